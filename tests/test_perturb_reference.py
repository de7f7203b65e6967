"""The reference teacher scores 1.000 on every kind's variants of every task the kind supports
(text tasks here; the code tasks' canonical solutions run in the sandbox in
tests/test_perturb_code_rename.py), and each kind covers some problems of each such task."""

from __future__ import annotations

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import KINDS, context_for, perturb_problems
from harness.tasks import TASKS, DataSource, get_task

CODE = {"humaneval", "mbpp", "mbpp-sanitized"}
ALIASES = {"aime": "aime24 + aime25", "math": "no local copy of MATH's test split"}
"""Supported tasks not loaded here, with why (their problems are checked under another name)."""
MAY_COVER_NONE = {
    ("numeric", "aime24"): "no AIME 2024 question is one arithmetic expression over its numbers",
    ("numeric", "aime25"): "no AIME 2025 question is one arithmetic expression over its numbers",
}
"""Kinds that apply to a task in principle but find no problem of it here they can vary."""


def _pairs() -> list[tuple[str, str]]:
    return [
        (kind, task)
        for kind in KINDS.names()
        for task in KINDS.load(kind).tasks
        if task not in CODE and task not in ALIASES
    ]


def test_every_supported_task_is_registered():
    for kind in KINDS.names():
        for task in KINDS.load(kind).tasks:
            assert task in TASKS, f"{kind} names task {task}, which is not registered"


@pytest.mark.parametrize(("kind", "task"), _pairs())
def test_reference_scores_one_on_every_variant(kind, task, data_dir):
    t = get_task(task)
    problems = t.load(DataSource(data_dir, hub=False)).problems
    out = perturb_problems(problems, context_for(t, problems), [kind], per_problem=1, seed=3)
    if (kind, task) in MAY_COVER_NONE:
        assert all(k == kind for k, _ in out.skipped)
        if not out.variants:
            return
    assert out.variants, f"{kind} made no variant of any {task} problem: {out.skipped}"
    scores = t.score_many([(ReferenceBackend.solution(v), v) for v in out.variants])
    wrong = [(v.id, s.answer, v.answer) for v, s in zip(out.variants, scores, strict=True)]
    wrong = [w for w, s in zip(wrong, scores, strict=True) if not s.correct]
    assert not wrong, f"{len(wrong)} of {len(out.variants)} wrong, e.g. {wrong[:3]}"
    ids = {p.id for p in problems}
    assert all(v.parent_id in ids and v.perturbation == kind for v in out.variants)
    if KINDS.load(kind).preserves_answer:
        gold = {p.id: p.answer for p in problems}
        assert all(v.answer == gold[v.parent_id] for v in out.variants)
