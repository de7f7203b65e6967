"""Answers graded per second: the harness's math grader vs calling math-verify directly.

Both grade the same (answer, gold) pairs in the same run: for every MATH-500 problem, the
answer its worked solution boxes (equal to the gold) and the same answer with its first number
+1 (not equal), so half the pairs are equal. The harness grader decides what it can exactly
(normalized strings, plain numbers, base subscripts) and sends the rest to math-verify in a
worker process with a hard time limit; "direct" is `math_verify.verify(parse(gold),
parse(answer))` in this process's main thread, the way its README shows it. Their verdicts
are compared pair by pair.

Then two more sections. Throughput: records per second through the whole grading path a run
takes (`split_reasoning`, then `Task.score`) for 10k GSM8K-style R1 outputs (a think block
with a decoy, then the gold or the gold +1 dressed as "The answer is 18.", a box with a unit,
a `**Final Answer**` heading, `#### 18` ...) and 2k MATH-style ones (MATH-500 golds in the
corpus's R1 dressings). Adversarial: every extraction function of
`harness.tasks.grading.extract` (and `numeric.parse_number`) on each 100 KB hostile string of
tests/adversarial.py, with each function's worst time and the string that caused it; a call
that runs past --call-limit is stopped and reported as such.

    python benchmarks/bench_grading.py [--rounds 2] [--workers 2]
    python benchmarks/bench_grading.py --quick          # a small version of everything
    python benchmarks/bench_grading.py --sections throughput,adversarial --gsm8k 2000

Data: $HARNESS_DATA_DIR/<set>/test.jsonl, else <repo>/../shared/data/<set>/test.jsonl
(math500 for the pairs and the MATH outputs, gsm8k for the GSM8K golds; without gsm8k the
golds are synthetic, without math500 the MATH outputs are the corpus's endings).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def find_data(name: str) -> Path | None:
    env = os.environ.get("HARNESS_DATA_DIR")
    for base in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        path = base / name / "test.jsonl"
        if path.is_file():
            return path
    return None


def data_file() -> Path:
    path = find_data("math500")
    if path is None:
        sys.exit(
            "no math500/test.jsonl: set HARNESS_DATA_DIR to the data folder (see README, Data)"
        )
    return path


def pairs(limit: int | None = None) -> list[tuple[str, str]]:
    from harness.tasks.grading.extract import last_boxed

    out = []
    for line in data_file().read_text(encoding="utf-8").splitlines()[:limit]:
        row = json.loads(line)
        answer = last_boxed(row["solution"]) or row["answer"]
        m = re.search(r"\d+", answer)
        wrong = (
            answer[: m.start()] + str(int(m.group()) + 1) + answer[m.end() :]
            if m
            else f"2\\cdot({answer})"
        )
        out += [(answer, row["answer"]), (wrong, row["answer"])]
    return out


def direct(items: list[tuple[str, str]]) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    t0 = time.perf_counter()
    verdicts = [bool(verify(parse(f"${g}$"), parse(f"${a}$"))) for a, g in items]
    return verdicts, time.perf_counter() - t0


def harness(items: list[tuple[str, str]], workers: int) -> tuple[list[bool], float, dict]:
    from harness.tasks.grading.mathequiv import MathVerifier

    verifier = MathVerifier()
    try:
        # Start the worker processes (and their first parse) outside the clock.
        verifier.compare_many([("\\sqrt{8}", "2\\sqrt{2}")] * workers, workers=workers)
        t0 = time.perf_counter()
        results = verifier.compare_many(items, workers=workers)
        seconds = time.perf_counter() - t0
    finally:
        verifier.close()
    how: dict[str, int] = {}
    for r in results:
        how[r.how] = how.get(r.how, 0) + 1
    return [r.equal for r in results], seconds, how


def bench_pairs(args: argparse.Namespace) -> None:
    items = pairs(args.pairs_limit)
    from harness.tasks.grading.mathequiv import quick_compare

    hard = [p for p in items if quick_compare(*p) is None]
    print(f"{len(items)} pairs from MATH-500 ({sum(1 for _ in items) // 2} equal by construction)")
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        v_direct, s_direct = direct(items)
        best["direct"] = min(best.get("direct", 1e9), s_direct)
        v_one, s_one, how = harness(items, 1)
        best["harness-1"] = min(best.get("harness-1", 1e9), s_one)
        v_many, s_many, _ = harness(items, args.workers)
        best[f"harness-{args.workers}"] = min(best.get(f"harness-{args.workers}", 1e9), s_many)
        best["hard-direct"] = min(best.get("hard-direct", 1e9), direct(hard)[1])
        best["hard-harness"] = min(best.get("hard-harness", 1e9), harness(hard, 1)[1])
    n = len(items)
    print(f"math-verify direct (main thread, in process): {n / best['direct']:8.1f} pairs/s")
    print(f"harness grader, 1 worker process:             {n / best['harness-1']:8.1f} pairs/s")
    key = f"harness-{args.workers}"
    print(
        f"harness grader, {args.workers} worker processes:            {n / best[key]:8.1f} pairs/s"
    )
    print(f"harness decisions by route: {how}")
    print(
        f"only the {len(hard)} pairs the harness hands to math-verify: direct "
        f"{len(hard) / best['hard-direct']:.1f} pairs/s, harness worker "
        f"{len(hard) / best['hard-harness']:.1f} pairs/s (the cost of the process boundary)"
    )
    expected = [i % 2 == 0 for i in range(n)]
    print(
        f"correct verdicts: direct {sum(a == b for a, b in zip(v_direct, expected, strict=True))}"
        f"/{n}, harness {sum(a == b for a, b in zip(v_one, expected, strict=True))}/{n}"
    )
    diff = [(items[i], v_direct[i], v_one[i]) for i in range(n) if v_direct[i] != v_one[i]]
    print(f"pairs where they disagree: {len(diff)}")
    for (answer, gold), d, h in diff[:12]:
        print(f"  answer {answer!r} gold {gold!r}: direct {d}, harness {h}")
    assert v_one == v_many, "parallel and serial grading disagree"


# -- throughput through the whole grading path ---------------------------------------------------

_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_golds(n: int) -> list[tuple[str, str]]:
    """(worked solution, gold) of GSM8K's test split, cycled to n; synthetic without the file."""
    path = find_data("gsm8k")
    rows: list[tuple[str, str]] = []
    if path is not None:
        for line in path.read_text(encoding="utf-8").splitlines():
            body, _, gold = json.loads(line)["answer"].rpartition("####")
            rows.append((_CALC.sub("", body).strip(), gold.strip().replace(",", "")))
    if not rows:
        rng = random.Random(11)
        for _ in range(500):
            a, b = rng.randint(2, 90), rng.randint(2, 40)
            rows.append((f"Each box holds {a} and there are {b} boxes, so {a} * {b}.", str(a * b)))
    return [rows[i % len(rows)] for i in range(n)]


def _grouped(value: str, gold: int | None) -> str:
    """The value with thousands commas (`1,234`) when it is the integer gold."""
    return f"{gold:,}" if gold is not None and value == str(gold) else value


_GSM8K_ENDINGS: tuple[Callable[[str, int | None], str], ...] = (
    lambda v, g: f"The answer is {v}.",
    lambda v, g: f"So she makes ${v} every day.\n\n**Final Answer**\n\\[\n\\boxed{{{v}}}\n\\]",
    lambda v, g: f"**Final Answer** \\boxed{{{v}}}",
    lambda v, g: f"Therefore, the total is $\\boxed{{{v}\\text{{ dollars}}}}$.",
    lambda v, g: f"\\boxed{{{v} \\text{{ apples}}}}",
    lambda v, g: f"#### {v}",
    lambda v, g: f"Answer: {v}",
    lambda v, g: f"So in total he has {v} marbles left.",
    lambda v, g: f"The final answer is $\\boxed{{{_grouped(v, g)}}}$.",
    lambda v, g: f"She pays \\$ {v} in all, so the answer is \\({v}\\).",
    lambda v, g: f"Thus, it takes {v} minutes.\n\nConfidence: 90%",
)


def gsm8k_outputs(n: int) -> list[tuple[str, str, bool]]:
    """(R1-style output, gold, equal?): a think block that holds the worked solution and a
    dropped decoy, then the gold (4 in 5) or the gold +1, in one of the endings above."""
    rng = random.Random(5)
    out = []
    for i, (solution, gold) in enumerate(gsm8k_golds(n)):
        try:
            g = int(gold)
        except ValueError:  # a decimal gold: keep it as written
            g = None
        equal = i % 5 != 4
        value = gold if equal else (str(g + 1) if g is not None else gold + "1")
        ending = rng.choice(_GSM8K_ENDINGS)
        body = ending(value, g)
        decoy = str((g or 0) + 7)
        think = f"Okay, let me see.\n{solution}\nWait, maybe it is {decoy}? No, recheck.\n</think>"
        prefix = "<think>\n" if i % 2 else ""  # prefilled `<think>` half of the time
        out.append((f"{prefix}{think}\n\n{body}", gold, equal))
    return out


def math_outputs(n: int) -> tuple[list[tuple[str, str, bool]], str]:
    """(R1-style output, gold, equal?) for MATH: MATH-500 golds in the corpus's dressings (its
    worked-solution answer, or that answer with a number changed), else the corpus itself."""
    from tests.math_endings import corpus, r1_output

    path = find_data("math500")
    if path is None:
        endings = corpus()
        picked = [endings[i % len(endings)] for i in range(n)]
        return [(e.text, e.gold, e.expected) for e in picked], "the corpus of endings"
    rng = random.Random(3)
    items = pairs()
    out = []
    for i in range(n):
        answer, gold = items[i % len(items)]
        wrong, _ = items[(i % len(items)) ^ 1]
        equal = i % len(items) % 2 == 0
        out.append((r1_output(answer, gold, rng, decoy=wrong if equal else gold), gold, equal))
    return out, "MATH-500 golds in R1 dressings"


def score_all(
    task_name: str, outputs: list[tuple[str, str, bool]]
) -> tuple[float, Counter, list[int]]:
    """(seconds, the rule that found each answer, indices of verdicts against the expected)
    for the whole path."""
    from harness.tasks import get_task
    from harness.tasks.grading.extract import split_reasoning
    from harness.types import Generation, Problem

    task = get_task(task_name)
    problems = [
        Problem(id=f"b{i}", task=task_name, question="q", answer=gold)
        for i, (_, gold, _) in enumerate(outputs)
    ]
    # Start math-verify's worker (and its first parse) outside the clock.
    warm = split_reasoning(outputs[0][0], True)
    task.score(Generation(text=warm[1], reasoning=warm[0], reasoning_closed=warm[2]), problems[0])
    how: Counter = Counter()
    misses: list[int] = []
    t0 = time.perf_counter()
    for i, ((text, _, equal), problem) in enumerate(zip(outputs, problems, strict=True)):
        reasoning, answer_part, closed = split_reasoning(text, True)
        score = task.score(
            Generation(text=answer_part, reasoning=reasoning, reasoning_closed=closed), problem
        )
        how[score.extractor or score.detail or "none"] += 1
        if (score.correct is True) != equal:
            misses.append(i)
    return time.perf_counter() - t0, how, misses


def _report(name: str, outs: list[tuple[str, str, bool]], source: str, task: str) -> None:
    seconds, how, misses = score_all(task, outs)
    n = len(outs)
    print(
        f"{name}: {n} R1 outputs ({source}): {n / seconds:9.1f} records/s ({seconds:.2f} s); "
        f"verdicts as constructed {n - len(misses)}/{n}"
    )
    print(f"  answers found by rule: {dict(how.most_common())}")
    for i in misses[:5]:
        text, gold, equal = outs[i]
        tail = text.rpartition("</think>")[2].strip()
        print(f"  against the construction (equal={equal}, gold {gold!r}): {tail[-150:]!r}")


def bench_throughput(args: argparse.Namespace) -> None:
    print("\n== grading throughput: split_reasoning + Task.score, one record at a time ==")
    if args.gsm8k:
        source = "GSM8K test golds" if find_data("gsm8k") else "synthetic golds"
        _report("gsm8k", gsm8k_outputs(args.gsm8k), source, "gsm8k")
    if args.math:
        outs, source = math_outputs(args.math)
        _report("math500", outs, source, "math500")


# -- adversarial strings through every extractor --------------------------------------------------

_ARGS_BY_NAME: dict[str, object] = {
    "think": True,
    "options": ("Planetary density", "Planetary years", "Planetary days", "Gravity"),
    "letters": "ABCD",
    "gold": "18",
}
# Keyword variants worth timing on their own (each is a different code path).
_VARIANTS: dict[str, tuple[dict[str, object], ...]] = {
    "extract_final_answer": ({}, {"kind": "math"}, {"kind": "number"}, {"lenient": False}),
    "extract_code": ({}, {"continuation": True}),
    "split_reasoning": ({"think": True}, {"think": False}),
    "extract_choice": ({}, {"lenient": False}),
}


def extractors() -> tuple[list[tuple[str, Callable[[str], object]]], list[str]]:
    """(label, one-argument call) for every public function of the extract module that takes
    the text first, its variants, and numeric.parse_number; and the ones skipped (why)."""
    from harness.tasks.grading import extract, numeric

    calls: list[tuple[str, Callable[[str], object]]] = []
    skipped: list[str] = []
    funcs = [
        (name, f)
        for name, f in vars(extract).items()
        if inspect.isfunction(f) and not name.startswith("_") and f.__module__.startswith("harness")
    ]
    funcs += [(f"numeric.{n}", getattr(numeric, n)) for n in ("parse_number",)]
    for name, f in funcs:
        params = list(inspect.signature(f).parameters.values())
        if not params or "str" not in str(params[0].annotation):
            skipped.append(f"{name} (does not take a text)")
            continue
        fixed: dict[str, object] = {}
        missing = []
        for p in params[1:]:
            if p.default is not inspect.Parameter.empty:
                continue
            if p.name in _ARGS_BY_NAME:
                fixed[p.name] = _ARGS_BY_NAME[p.name]
            else:
                missing.append(p.name)
        if missing:
            skipped.append(f"{name} (needs {', '.join(missing)})")
            continue
        for variant in _VARIANTS.get(name.split(".")[-1], ({},)):
            kwargs = {**fixed, **variant}
            shown = ", ".join(f"{k}={v!r}" for k, v in variant.items())
            label = f"{name}({shown})" if shown else name
            calls.append((label, lambda text, f=f, kw=kwargs: f(text, **kw)))
    return calls, skipped


class _Overrun(Exception):
    pass


def _timed(call: Callable[[str], object], text: str, limit: float) -> float | None:
    """Seconds one call takes; None when it runs past `limit` (stopped by a timer signal, which
    Python's regex engine and loops both honour)."""

    def stop(signum, frame):
        raise _Overrun

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    t0 = time.perf_counter()
    try:
        call(text)
    except _Overrun:
        return None
    except Exception:  # noqa: BLE001 - a crash is reported by the caller's check, not timed
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return time.perf_counter() - t0


def bench_adversarial(args: argparse.Namespace) -> None:
    from tests.adversarial import adversarial_strings

    strings = adversarial_strings(args.adversarial_size)
    calls, skipped = extractors()
    size = max(len(s) for s in strings.values())
    print(
        f"\n== adversarial strings: {len(strings)} strings of ~{size // 1000} KB through "
        f"{len(calls)} extractor calls (stopped past {args.call_limit:g} s) =="
    )
    errors: list[str] = []
    rows = []
    for label, call in calls:
        worst, worst_name, total, overruns = 0.0, "", 0.0, []
        for name, text in strings.items():
            try:
                seconds = _timed(call, text, args.call_limit)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{label} on {name}: {type(e).__name__}: {e}")
                continue
            if seconds is None:
                overruns.append(name)
                seconds = args.call_limit
            total += seconds
            if seconds > worst:
                worst, worst_name = seconds, name
        rows.append((worst, label, worst_name, total, overruns))
    print(f"  {'function':<46}{'worst s':>9}  {'on':<32}{'all strings s':>14}")
    for worst, label, worst_name, total, overruns in sorted(rows, reverse=True):
        flag = f"  STOPPED on {', '.join(overruns)}" if overruns else ""
        print(f"  {label:<46}{worst:>9.4f}  {worst_name:<32}{total:>14.3f}{flag}")
    for s in skipped:
        print(f"  skipped: {s}")
    for e in errors[:20]:
        print(f"  raised: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="best of N rounds for each")
    ap.add_argument("--workers", type=int, default=2, help="harness worker processes")
    ap.add_argument(
        "--sections",
        default="pairs,throughput,adversarial",
        help="comma-separated: pairs (harness vs math-verify), throughput, adversarial",
    )
    ap.add_argument("--pairs-limit", type=int, default=None, help="first N MATH-500 problems")
    ap.add_argument("--gsm8k", type=int, default=10_000, help="GSM8K-style outputs (0: none)")
    ap.add_argument("--math", type=int, default=2_000, help="MATH-style outputs (0: none)")
    ap.add_argument("--adversarial-size", type=int, default=100_000, help="characters each")
    ap.add_argument("--call-limit", type=float, default=10.0, help="seconds before a call stops")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a small version: 1 round, 50 problems, 1000 + 200 outputs, 10 KB strings",
    )
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.pairs_limit, args.gsm8k, args.math = 1, 50, 1000, 200
        args.adversarial_size = 10_000
    import logging

    logging.disable(logging.WARNING)  # math-verify logs each parse failure
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if "pairs" in sections:
        bench_pairs(args)
    if "throughput" in sections:
        bench_throughput(args)
    if "adversarial" in sections:
        bench_adversarial(args)


if __name__ == "__main__":
    main()
