"""The harness's math grader and math-verify side by side, and every disagreement explained.

Cases: the math rows of the grading table (tests/test_grading_table.py, math500 and aime24)
and the corpus of R1-style endings (tests/math_endings.py), each with the verdict a careful
human grader gives by construction. "harness" grades the output the way a run does
(`split_reasoning`, then `Task.score` on the answer part); "math-verify" is math-verify's own
verdict `verify(parse(f"${gold}$"), parse(text))` in this process, on the answer part (the
reference behaviour: the headline agreement) and, for information, on the whole output as a
user who never splits off the chain would run it. Each disagreement is named by
`classify_difference` after the table of deliberate differences
(harness/tasks/grading/differences.py); the ones it cannot name are listed in full.

    python benchmarks/bench_mathverify_diff.py [--limit N] [--show N] [--show-both N] [--check]

Figures, per reading: agreement (share of cases where the two verdicts match), each one's
agreement with the expected verdict, and "agreement after deliberate differences" (cases where
they agree, or disagree for a listed reason with the harness right). --check exits 1 when a
disagreement is unexplained in either reading, or the answer-part agreement is under
--min-agreement (0.97).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _clip(s: str, n: int) -> str:
    s = repr(s)
    return s if len(s) <= n else s[: n // 2 - 2] + " ... " + s[-(n // 2 - 3) :]


def report(items: list, v_ours: list[bool], v_mv: list[bool], label: str, args) -> tuple:
    """Print one reading's figures and disagreements; (agreement, unexplained count)."""
    from harness.tasks.grading.differences import BY_NAME, classify_difference

    n = len(items)
    agree = sum(a == b for a, b in zip(v_ours, v_mv, strict=True))
    ours_ok = sum(a == c.expected for a, c in zip(v_ours, items, strict=True))
    mv_ok = sum(b == c.expected for b, c in zip(v_mv, items, strict=True))
    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, (c, a, b) in enumerate(zip(items, v_ours, v_mv, strict=True)):
        if a != b:
            groups[classify_difference(c.text, c.gold, a, b)].append(i)
    explained_right = sum(
        v_ours[i] == items[i].expected for name, idx in groups.items() if name for i in idx
    )
    print(f"\n== math-verify on the {label} ==")
    print(f"agreement harness vs math-verify:         {agree / n:.3f} ({agree}/{n})")
    print(f"harness matches the expected verdict:     {ours_ok / n:.3f} ({ours_ok}/{n})")
    print(f"math-verify matches the expected verdict: {mv_ok / n:.3f} ({mv_ok}/{n})")
    after = (agree + explained_right) / n
    print(f"agreement after deliberate differences:   {after:.3f} ({agree + explained_right}/{n})")
    print(f"disagreements: {n - agree}")
    print(f"  {'difference':<22}{'count':>6}  harness right")
    named = sorted((k for k in groups if k), key=lambda k: -len(groups[k]))
    for name in named:
        idx = groups[name]
        right = sum(v_ours[i] == items[i].expected for i in idx)
        print(f"  {name:<22}{len(idx):>6}  {right}/{len(idx)}")
        reason = textwrap.fill(BY_NAME[name].reason, 92, initial_indent=" " * 6)
        print(reason.replace("\n", "\n      "))
        for i in idx[: args.show]:
            c = items[i]
            print(
                f"      e.g. [{c.kind}] {_clip(c.text, 90)} gold {c.gold!r}: harness "
                f"{v_ours[i]}, math-verify {v_mv[i]}, expected {c.expected}"
            )
        for i in [i for i in idx if v_ours[i] != items[i].expected]:
            c = items[i]
            print(
                f"      HARNESS WRONG [{c.kind}] {_clip(c.text, 90)} gold {c.gold!r}: harness "
                f"{v_ours[i]}, math-verify {v_mv[i]}, expected {c.expected}"
            )
    unexplained = groups.get(None, [])
    print(f"  {'(unexplained)':<22}{len(unexplained):>6}")
    for i in unexplained:
        c = items[i]
        print(
            f"  [{c.source} {c.kind}] gold {c.gold!r}: harness {v_ours[i]}, "
            f"math-verify {v_mv[i]}, expected {c.expected}"
        )
        print(textwrap.indent(c.text, "      | "))
    both = [i for i, c in enumerate(items) if v_ours[i] == v_mv[i] and v_ours[i] != c.expected]
    print(f"both wrong (they agree, against the expected verdict): {len(both)}")
    for i in both[: args.show_both]:
        c = items[i]
        print(
            f"  [{c.source} {c.kind}] gold {c.gold!r}: both {v_ours[i]}, expected {c.expected}: "
            f"{_clip(c.text, 120)}"
        )
    return agree / n, len(unexplained)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N table rows and N endings")
    ap.add_argument("--show", type=int, default=2, help="examples shown per explained group")
    ap.add_argument("--show-both", type=int, default=20, help="cases both get wrong, shown")
    ap.add_argument("--check", action="store_true", help="exit 1 on unexplained disagreements")
    ap.add_argument("--min-agreement", type=float, default=0.97)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # math-verify logs each parse failure

    from tests.math_endings import cases, mathverify, ours

    items = cases(args.limit)
    t0 = time.perf_counter()
    v_ours = [ours(c) for c in items]
    t1 = time.perf_counter()
    v_part = [mathverify(c) for c in items]
    t2 = time.perf_counter()
    v_whole = [mathverify(c, whole=True) for c in items]
    n = len(items)
    n_table = sum(c.source == "table" for c in items)
    print(
        f"{n} cases: {n_table} grading-table math rows, {n - n_table} corpus endings; "
        f"{sum(c.expected for c in items)} equal by construction"
    )
    print(f"graded in: harness {t1 - t0:.1f} s, math-verify (answer part) {t2 - t1:.1f} s")
    agreement, unexplained = report(items, v_ours, v_part, "answer part (reference)", args)
    _, unexplained_whole = report(items, v_ours, v_whole, "whole output", args)
    print(f"\nHEADLINE agreement with math-verify on the answer part: {agreement:.3f}")
    if args.check and (unexplained or unexplained_whole or agreement < args.min_agreement):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
