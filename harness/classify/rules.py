"""Mechanical causes: failures the output itself explains, decided by rule before any model.

They come first because a cut, looping or unreadable output says nothing about whether the
student could have reasoned its way to the answer; only what they leave gets evidence
features and the capacity/mismatch model. Rules, in the order of `MECHANICAL` (the first that
holds wins):

- `truncated`: the record is truncated (cut at the token limit, or its reasoning never
  closed) or its finish reason is `length`.
- `looping`: the chain repeats itself, by the health section's detector
  (`harness.metrics.health.record_health`: a step cycle, or half the word 4-grams repeated).
- `no_answer`: nothing was extracted.
- `format`: answered, but not in the form the prompt asked for. Precisely: under the `r1`
  styles (`r1`, `r1-confidence`, the default) an original problem asks for `\\boxed{}` (an
  option letter in the box for choice tasks) and a code task for one fenced python block; a
  `format` variant asks for one of `\\boxed{}`, `####` or `Answer:` (which one is not in the
  record, so any of the three counts as asked, narrowed to the teacher's form when the paired
  teacher answered non-leniently in one of them). An answer found by a strict rule outside the
  asked set (`final_answer`, `answer_line`, `hash`, `bare_option`, `option_text`,
  `continuation`) is `format`, unless the value given is wrong by the task's own equivalence
  (`value_right` False): then the form is not what failed, the reasoning is, and the item goes
  on to the evidence model (its evidence says the form was off too). Lenient fallbacks are
  `grader_uncertain` instead (the grader guessed which part was the answer). `plain` and
  `cot-fewshot` ask for no form, so this part never fires there. Also `format`: a `format`
  variant whose parent the student got right (the same sample's parent record, else most of
  the parent's samples): the reasoning was there, only the answer form changed.
- `teacher_also_wrong`: every graded paired teacher record (sample s mod the teacher's
  samples, as in the `paired` metrics) is wrong too: not attributable to distillation.
- `grader_uncertain`: the answer came from a lenient fallback rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.types import Record

R1_STYLES = frozenset({"r1", "r1-confidence"})
"""Prompt styles whose closing instruction asks for an answer form."""
STATED_FORMS = frozenset({"boxed", "hash", "answer_line"})
"""The extractor names of the forms a `format` variant may ask for."""
CODE_EXTRACTORS = frozenset({"code_block", "continuation", "bare_code"})


def asked_forms(
    record: Record, teacher_records: Sequence[Record] = (), style: str | None = "r1"
) -> frozenset[str] | None:
    """The extractor names that read an answer in the form the prompt asked for (None: the
    style asks for no form)."""
    if (style or "r1") not in R1_STYLES:
        return None
    if record.extractor in CODE_EXTRACTORS:
        return frozenset({"code_block"})
    if record.perturbation == "format":
        told = {
            t.extractor
            for t in teacher_records
            if t.extractor in STATED_FORMS and not t.lenient and t.answer is not None
        }
        return frozenset(told) if len(told) == 1 else STATED_FORMS
    return frozenset({"boxed"})


def off_form(
    record: Record, teacher_records: Sequence[Record] = (), style: str | None = "r1"
) -> bool:
    """Answered by a strict rule outside the asked form (whether or not that made it fail)."""
    if record.lenient or record.answer is None:
        return False
    asked = asked_forms(record, teacher_records, style)
    return asked is not None and record.extractor not in asked


def parent_was_right(record: Record, parent_records: Sequence[Record]) -> bool | None:
    """Whether the student got the parent right: the same sample's record, else the majority
    of the parent's graded samples (None: no graded parent record)."""
    graded = [p for p in parent_records if p.correct is not None]
    if not graded:
        return None
    same = [p for p in graded if p.sample == record.sample]
    if same:
        return bool(same[0].correct)
    return sum(bool(p.correct) for p in graded) * 2 > len(graded)


def is_looping(record: Record, health_item: dict[str, Any] | None = None) -> bool:
    """The health section's loop verdict (computed here when not given)."""
    if health_item is None or "loop" not in health_item:
        from harness.metrics.health import record_health

        health_item = record_health(record)
    return bool(health_item.get("loop"))


def mechanical(
    record: Record,
    teacher_records: Sequence[Record],
    health_item: dict[str, Any] | None = None,
    *,
    style: str | None = "r1",
    parent_records: Sequence[Record] = (),
    value_right: bool | None = None,
) -> str | None:
    """The first mechanical cause of `MECHANICAL` that explains a failed student record, or
    None (then the evidence model decides). `teacher_records`: the paired teacher record(s) of
    the same problem and sample; `parent_records`: the student's records of a variant's
    parent; `value_right`: whether the answer given equals the gold by the task's equivalence,
    whatever its form (None: not known)."""
    if record.truncated or record.finish_reason == "length":
        return "truncated"
    if is_looping(record, health_item):
        return "looping"
    if record.answer is None or not record.answer.strip():
        return "no_answer"
    if not record.lenient:
        asked = asked_forms(record, teacher_records, style)
        if asked is not None and record.extractor not in asked and value_right is not False:
            return "format"
    if record.perturbation == "format" and parent_was_right(record, parent_records):
        return "format"
    graded = [t for t in teacher_records if t.correct is not None]
    if graded and not any(t.correct for t in graded):
        return "teacher_also_wrong"
    if record.lenient:
        return "grader_uncertain"
    return None


__all__ = ["asked_forms", "is_looping", "mechanical", "off_form", "parent_was_right"]
