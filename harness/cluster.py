"""Generation over a Ray cluster (`harness run --ray`): the run's planned batches become a Ray
Data dataset mapped by a pool of actors, each of which loads the backend once.

The driver keeps the only writer of the generation cache: actors return generations and the
driver commits each batch as it streams back, under the same keys a single-process run uses.
Batches are the ones `plan_batches` makes for that run, so a batching backend sees the same
batches on the cluster as on one machine and produces the same text. An actor that dies (its
process killed, its node lost) costs only the batch it held: Ray restarts the actor and Ray
Data retries the batch; what finished before is already in the cache, so a rerun after a
failed run generates only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.console import info
from harness.errors import HarnessError
from harness.generate import plan_batches
from harness.models import ModelSpec
from harness.store import GenerationCache
from harness.types import Generation, Request

__all__ = ["RayPool", "actor_count", "connect", "require_ray"]

INSTALL = "pip install 'harness[ray]'"
RESTARTS = 4
"""How often a batch is retried after the actor holding it dies, before the run fails: enough
for a lost node or two, bounded so that a batch that kills every process it meets (a crash in
the engine) fails the run instead of retrying forever. Ray Data restarts the actors themselves
and bounds actors that die while loading the model."""


def require_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise HarnessError(f"--ray needs Ray Data, which is not installed: {INSTALL}") from e
    return ray


def connect(address: str) -> bool:
    """Join the cluster at `address` (`auto`: the running one, RAY_ADDRESS; `local`: a Ray
    started on this machine for the run). True when this call started or joined Ray (the
    caller shuts it down), False when the process was already connected."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "configure_logging": True,
    }
    # The driver's C++ core logs to this terminal; what fails reaches the run as an error.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    target = address  # "local" always starts a new Ray, never joins one found on the machine
    if address not in ("local", "auto"):
        down = _unreachable(address)
        if down:
            raise HarnessError(
                f"--ray {address}: cannot join a Ray cluster ({down}); start one with "
                "`ray start --head`, pass its address (host:port), or use --ray local"
            )
    if address == "local":
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=target, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HarnessError(
            f"--ray {address}: cannot join a Ray cluster ({first}); start one with "
            "`ray start --head`, pass its address (host:port), or use --ray local"
        ) from None
    logging.getLogger("ray").setLevel(logging.ERROR)  # ray.init set its own level
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return True


def _unreachable(address: str) -> str | None:
    """Why the head at `host:port` (or `ray://host:port`) takes no TCP connection, in a few
    seconds: Ray's own client retries an absent head for minutes."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return "write it as host:port, e.g. 10.0.0.5:6379"
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return None
    except OSError as e:
        return f"{host}:{port} refused or did not answer: {e.strerror or e}"


def actor_count(resources: dict[str, float], wanted: int | None, batches: int) -> int:
    """Actors to start: `--ray-actors`, else as many as the cluster's CPUs and GPUs hold at
    one actor's needs; never more than there are batches to run. A cluster that cannot hold
    even one actor is one line now, not a run that waits for resources forever."""
    ray = require_ray()
    total = ray.cluster_resources()
    fits = {k: int(total.get(_resource_name(k), 0.0) // v) for k, v in resources.items() if v > 0}
    short = [k for k, n in fits.items() if n < 1]
    if short:
        have = ", ".join(
            f"{_resource_name(k)} {total.get(_resource_name(k), 0.0):g}" for k in short
        )
        need = ", ".join(f"{_resource_name(k)} {resources[k]:g}" for k in short)
        raise HarnessError(
            f"--ray: one actor needs {need} but the cluster has {have}; add nodes that have "
            "them, or change the model spec (e.g. fewer threads or GPUs)"
        )
    if wanted is not None:
        return max(1, min(wanted, batches))
    return max(1, min(min(fits.values(), default=1), batches))


def _resource_name(key: str) -> str:
    return {"num_cpus": "CPU", "num_gpus": "GPU"}.get(key, key)


class _Generator:
    """One Ray Data actor: the backend loaded once, then one planned batch per call. What to
    load travels on the class itself (`generator_class`): constructor arguments would sit in
    the object store, where Ray warns that a restarted actor may not find them."""

    spec: bytes = b""
    cache_dir: str = ""
    batch_size: int | None = None
    version: str = ""

    def __init__(self) -> None:
        if self.version != __version__:
            raise RuntimeError(
                f"this node runs harness {__version__}, the driver {self.version}: install the "
                "same version on every node"
            )
        from harness.backends import load_backend

        model: ModelSpec = pickle.loads(self.spec)
        self.backend = load_backend(
            model, cache_dir=Path(self.cache_dir), batch_size=self.batch_size
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: list[str] = []
        for blob in batch["requests"]:
            requests: list[Request] = pickle.loads(blob)
            done = {i: g.to_dict() for i, g in self.backend.stream(requests)}
            out.append(json.dumps([[requests[i].key, done.get(i)] for i in range(len(requests))]))
        import ray

        node = ray.get_runtime_context().get_node_id()
        return {"batch": list(batch["batch"]), "results": out, "node": [node] * len(out)}


def generator_class(spec: ModelSpec, cache_dir: Path, batch_size: int | None) -> type:
    """A `_Generator` for one model (pickled by value with its settings)."""
    return type(
        "_Generator",
        (_Generator,),
        {
            "spec": pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL),
            "cache_dir": str(cache_dir),
            "batch_size": batch_size,
            "version": __version__,
        },
    )


@dataclass
class RayPool:
    """Generation for one model on the cluster: what `generate_missing` does in process."""

    spec: ModelSpec
    cache_dir: Path
    batch_size: int
    actors: int | None = None
    resources: dict[str, float] | None = None
    label: str = ""
    """Who generates, for the progress line (`student smollm2-135m`)."""
    last_actors: int = 0
    nodes: dict[str, int] = field(default_factory=dict)
    """Batches each node ran (node id -> count) in the last `generate`."""

    def generate(
        self,
        requests: Sequence[Request],
        results: dict[str, tuple[Generation, bool]],
        cache: GenerationCache,
        advance: Callable[[int], object] = lambda n: None,
    ) -> int:
        """Generate what `results` lacks on the cluster, committing every batch to the cache
        as it returns; the number of actors used (0: nothing was missing)."""
        pending = []
        for batch in plan_batches(requests, self.batch_size):
            todo = list({r.key: r for r in batch if r.key not in results}.values())
            if todo:
                pending.append(todo)
        if not pending:
            return 0
        self.nodes = {}
        for key, gen in self._stream(pending):
            cache.put(key, self.spec.cache_id, gen)
            results[key] = (gen, False)
            advance(1)
        info(
            f"{self.label or self.spec.name}: {sum(self.nodes.values())} batches ran on "
            f"{len(self.nodes)} node(s)"
        )
        return self.last_actors

    def _stream(self, pending: list[list[Request]]) -> Iterator[tuple[str, Generation]]:
        ray = require_ray()
        from harness.backends import backend_class

        needs = dict(self.resources or backend_class(self.spec.backend).ray_resources(self.spec))
        n = actor_count(needs, self.actors, len(pending))
        self.last_actors = n
        held = ", ".join(f"{_resource_name(k)} {v:g}" for k, v in needs.items())
        info(
            f"{self.label or self.spec.name}: {len(pending)} batches on the Ray cluster, "
            f"{n} actor{'s' if n != 1 else ''} ({held} each)"
        )
        items = [
            {"batch": i, "requests": pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL)}
            for i, b in enumerate(pending)
        ]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        _quiet_console()
        with warnings.catch_warnings():
            # Ray Data marks max_task_retries as a deprecated spelling but has no other.
            warnings.simplefilter("ignore", DeprecationWarning)
            mapped = ds.map_batches(
                generator_class(self.spec, self.cache_dir, self.batch_size),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=n),
                max_task_retries=RESTARTS,
                **needs,
            )
        try:
            for row in mapped.iter_rows():
                self.nodes[row["node"]] = self.nodes.get(row["node"], 0) + 1
                for key, data in json.loads(row["results"]):
                    if data is not None:
                        yield key, Generation.from_dict(data)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # Ray wraps what failed on the cluster in its own errors
            raise HarnessError(
                f"generation on the Ray cluster failed: {_cause(e)}; every batch that finished "
                "is in the cache, so the same command generates only what is missing"
            ) from None


def _quiet_console() -> None:
    """Ray Data's console lines (each execution's start and end) off the run's terminal; its
    log file keeps them. Its logging is configured on first use, so this runs after that."""
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(logging.ERROR)


def _cause(error: BaseException) -> str:
    """The first line of the innermost error Ray reports, not its traceback."""
    inner: BaseException = error
    for _ in range(5):
        nxt = getattr(inner, "cause", None) or inner.__cause__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    text = next((ln for ln in reversed(lines) if not ln.startswith(("File ", "^"))), "")
    return f"{type(inner).__name__}: {text}"[:300] if text else type(inner).__name__
