"""The worker process behind `mathequiv`: reads one JSON request per line, answers one per line.

math-verify's own timeout uses SIGALRM, which only works in a main thread; here it runs in the
main thread of a process of its own, and the parent adds a hard wall clock on top (it kills
this process when a comparison hangs anyway, e.g. inside sympy's C-level code).

Request:  {"id": n, "gold": "...", "answer": "...", "timeout": seconds}
Reply:    {"id": n, "equal": bool, "gold_parsed": bool, "answer_parsed": bool}
          or {"id": n, "error": "..."}
The first line written is {"ready": true} (or {"error": ...} when math-verify is missing).
"""

from __future__ import annotations

import json
import logging
import sys


def exact_numbers_differ(gold: list, answer: list) -> bool:
    """math-verify compares numbers after `evalf(chop=True)`, so 1/2004! equals 1/2006! there
    (both chop to 0). For two exact numbers (no floats) that it calls equal, check the relative
    difference at 60 digits; only a real difference overrides it."""
    import sympy

    a = next((x for x in answer if isinstance(x, sympy.Basic)), None)
    g = next((x for x in gold if isinstance(x, sympy.Basic)), None)
    if a is None or g is None:
        return False
    try:
        if not (a.is_number and g.is_number) or a.atoms(sympy.Float) or g.atoms(sympy.Float):
            return False
        va, vg = sympy.N(a, 60), sympy.N(g, 60)
        scale = max(abs(va), abs(vg))
        return bool(scale != 0 and abs(va - vg) / scale > sympy.Float("1e-30"))
    except Exception:  # noqa: BLE001 - no verdict change when the check itself fails
        return False


def main() -> None:
    out = sys.stdout
    try:
        from math_verify import parse, verify
    except ImportError as e:  # pragma: no cover - math-verify is a core dependency
        out.write(json.dumps({"error": f"math-verify is not installed ({e})"}) + "\n")
        out.flush()
        return
    logging.disable(logging.WARNING)  # math-verify logs every timeout and parse failure
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(100_000)
    gold_cache: dict[tuple[str, int], list] = {}
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = None
        try:
            req = json.loads(line)
            seconds = max(1, int(req.get("timeout", 5)))
            key = (req["gold"], seconds)
            gold = gold_cache.get(key)
            if gold is None:
                gold = parse(f"${req['gold']}$", parsing_timeout=seconds)
                if len(gold_cache) > 4096:
                    gold_cache.clear()
                gold_cache[key] = gold
            answer = parse(f"${req['answer']}$", parsing_timeout=seconds)
            equal = bool(verify(gold, answer, timeout_seconds=seconds))
            if equal and exact_numbers_differ(gold, answer):
                equal = False
            reply = {
                "id": req.get("id"),
                "equal": equal,
                "gold_parsed": bool(gold),
                "answer_parsed": bool(answer),
            }
        except Exception as e:  # noqa: BLE001 - one bad pair must not end the worker
            reply = {"id": req.get("id") if isinstance(req, dict) else None, "error": repr(e)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
