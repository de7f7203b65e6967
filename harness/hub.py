"""The Hugging Face hub, asked once whether it answers, so offline machines fail fast."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached, found in one connection attempt instead of the
    client's minute of retries; None when it answers or offline mode is on (local cache)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return None
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"{host}:{port}: {e.strerror or e}"
    return None
