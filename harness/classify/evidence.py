"""Evidence in plain words: why one failed item got its label, strongest first.

Every line is built from numbers and known names only (label names, perturbation kinds, probe
names, a form or family when it is a plain token); nothing a model wrote is ever pasted, so
the lines are safe to print in a table or a report without escaping model output.

Strength orders the facts: a mechanical cause first, then probes (interventions beat
correlations), then depth against the frontier (by how many standard deviations), the form's
gap, the variants' and parent's outcomes, OOD distance, divergence, confidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.classify.base import Features

KIND_WORDS = {
    "numeric": "number-changed",
    "rename": "renamed",
    "surface": "re-told",
    "format": "answer-format",
    "compose": "composed",
    "distractor": "distractor",
    "reorder": "reordered",
    "options": "option-relabelled",
    "code-rename": "code-renamed",
}
"""How a perturbation kind reads in "wrong on 3/3 renamed variants"."""
MECHANICAL_WORDS = {
    "truncated": "cut before its answer (token limit or unclosed reasoning)",
    "looping": "the chain loops (repeated steps or phrases)",
    "no_answer": "no answer could be extracted",
    "format": "answered, but not in the form asked for",
    "teacher_also_wrong": "the teacher is wrong on it too",
    "grader_uncertain": "the answer was found only by a lenient fallback rule",
}
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+=\-/]{0,47}")
_PROBE = re.compile(r"(decompose|familiarize)(?:[:@=_-](\d{1,3}))?")


def safe_name(name: str | None) -> str | None:
    """A name from the records (family, subset, form) when it is a plain token, else None."""
    if name and _TOKEN.fullmatch(name):
        return name
    return None


def _num(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else str(round(x))


_SUFFIX = {1: "st", 2: "nd", 3: "rd"}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else _SUFFIX.get(n % 10, "th")
    return f"{n}{suffix}"


def _depth(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else _num(x)


@dataclass(frozen=True)
class Context:
    """What the evidence reads besides Features: facts about the item from its records."""

    mechanical: str | None = None
    teacher_right: bool | None = None
    """The paired teacher record(s): all right (True), all wrong (False), none graded (None)."""
    variants: Mapping[str, tuple[int, int]] | None = None
    """For an original: the student's (right, total) on its variants, per perturbation kind."""
    perturbation: str | None = None
    decompose_k: int | None = None
    """The steps a `decompose` probe gave (probes.jsonl's k), when known."""
    decompose_from: str | None = None
    """Where they came from: `teacher` or `gold`."""
    off_form: bool = False
    """Answered outside the asked form, with a wrong value (so not a `format` failure)."""


def _probe_lines(
    probes: Mapping[str, bool], k_given: int | None = None, source: str | None = None
) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    for name in sorted(probes):
        m = _PROBE.fullmatch(name)
        if not m:
            continue
        ok = bool(probes[name])
        kind, k = m.group(1), m.group(2)
        if kind == "decompose":
            steps = int(k) if k else k_given
            whose = "gold" if source == "gold" else "teacher"
            plural = "" if steps == 1 else "s"
            given = f"{steps} {whose} step{plural}" if steps else f"the {whose}'s first steps"
            text = f"right when given {given}" if ok else f"still wrong when given {given}"
        else:
            text = (
                "right on the same problem in a familiar form"
                if ok
                else "wrong on the same problem in a familiar form too"
            )
        out.append((10.0, text))
    return out


def describe(features: Features, context: Context | None = None) -> tuple[str, ...]:
    """The item's evidence lines, strongest first (ties keep the order of the module docs)."""
    ctx = context or Context()
    f = features
    facts: list[tuple[float, list[str]]] = []
    if ctx.mechanical:
        facts.append((100.0, [MECHANICAL_WORDS.get(ctx.mechanical, "mechanical cause")]))
    probe_lines = _probe_lines(f.probes, ctx.decompose_k, ctx.decompose_from)
    facts.extend((s, [t]) for s, t in probe_lines)
    if f.depth is not None:
        lines = [f"wrong at depth {_depth(f.depth)}"]
        strength = 1.0
        if f.frontier is not None and f.frontier < 1.0:
            lines.append("under 50% even at depth 1 on familiar forms (no frontier above 0)")
            if f.depth_margin is not None and math.isfinite(f.depth_margin):
                strength = 2.0 + min(abs(f.depth_margin), 6.0)
        elif f.frontier is not None:
            sd = f" ± {_num(f.frontier_sd)}" if f.frontier_sd is not None else ""
            lines.append(f"frontier {_num(f.frontier)}{sd} on familiar forms")
            if f.depth_margin is not None and math.isfinite(f.depth_margin):
                strength = 2.0 + min(abs(f.depth_margin), 6.0)
        else:
            lines.append("no depth frontier measured")
        facts.append((strength, lines))
    if ctx.teacher_right is True:
        facts.append((2.5, ["teacher right"]))
    if ctx.off_form:
        facts.append((1.2, ["answered outside the asked form, with a wrong value too"]))
    form = safe_name(f.form)
    if f.familiar is not None and form:
        facts.append((2.0, [f"form {form} is {'familiar' if f.familiar else 'unfamiliar'}"]))
    if f.form_gap is not None and math.isfinite(f.form_gap):
        this = f"this form ({form})" if form else "this form"
        side = "below" if f.form_gap >= 0 else "above"
        facts.append(
            (
                2.0 + 4.0 * abs(f.form_gap),
                [f"{this} {abs(f.form_gap) * 100:.0f} points {side} familiar forms at this depth"],
            )
        )
    if f.parent_right is not None:
        kind = KIND_WORDS.get(ctx.perturbation or "", "")
        which = f"{kind} variant" if kind else "variant"
        word = "right" if f.parent_right >= 0.5 else "wrong"
        facts.append(
            (
                2.0 + 3.0 * abs(f.parent_right - 0.5),
                [f"{word} on the parent of this {which} ({f.parent_right:.0%} of samples)"],
            )
        )
    for kind, (right, total) in sorted((ctx.variants or {}).items()):
        if total <= 0 or kind not in KIND_WORDS:
            continue
        wrong = total - right
        word, count = ("wrong", wrong) if wrong >= right else ("right", right)
        facts.append(
            (
                1.5 + 2.0 * abs(wrong / total - 0.5),
                [f"{word} on {count}/{total} {KIND_WORDS[kind]} variants"],
            )
        )
    if f.siblings_right is not None:
        facts.append(
            (
                1.5 + 2.0 * abs(f.siblings_right - 0.5),
                [f"right on {f.siblings_right:.0%} of the other forms of this problem"],
            )
        )
    if f.shallower_right is not None:
        facts.append(
            (
                1.5 + 2.0 * abs(f.shallower_right - 0.5),
                [f"right on {f.shallower_right:.0%} of shallower items of this form"],
            )
        )
    if f.ood_percentile is not None:
        p = f.ood_percentile  # 0-100
        rank = _ordinal(round(p))
        facts.append((1.0 + abs(p - 50.0) / 50.0, [f"OOD distance at the {rank} percentile"]))
    if f.divergence_step is not None and f.teacher_steps:
        step, of = f.divergence_step, f.teacher_steps
        text = (
            f"follows all {of} of the teacher's steps"
            if step >= of
            else f"leaves the teacher's chain after {step} of its {of} steps"
        )
        facts.append((1.0, [text]))
    elif f.divergence is not None:
        facts.append((1.0, [f"leaves the teacher's chain {f.divergence:.0%} of the way through"]))
    if f.confidence is not None:
        facts.append((0.5, [f"student confidence {f.confidence:.0%}"]))
    if ctx.teacher_right is None and ctx.mechanical != "teacher_also_wrong":
        facts.append((0.1, ["no graded teacher answer to compare"]))
    facts.sort(key=lambda fact: -fact[0])  # stable: ties keep the order above
    return tuple(line for _, lines in facts for line in lines)


__all__ = ["KIND_WORDS", "MECHANICAL_WORDS", "Context", "describe", "safe_name"]
