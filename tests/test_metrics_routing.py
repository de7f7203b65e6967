"""Routing the student's least confident answers to the teacher: the curve, the fraction that
matches the teacher, and AURC, checked by hand arithmetic and against a plain loop."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import numpy as np
import pytest

from harness.metrics import MetricOptions, compute_metrics
from harness.metrics.routing import routing_order, routing_stats
from harness.types import Record
from tests.metrics_records import make_record as rec

KEYS = [
    "confidence_source",
    "n",
    "student_accuracy",
    "teacher_accuracy",
    "curve",
    "fraction_to_match_teacher",
    "tokens_to_match_teacher",
    "aurc",
    "aurc_optimal",
    "teacher_tokens_known",
    "reason",
]


def _stated(
    pid: str, right: bool, pct: float | None, *, task: str = "t", sample: int = 0
) -> Record:
    answer = "1" if right else "0"
    said = "" if pct is None else f" Confidence: {pct}%"
    return rec(pid, "student", right, sample, task=task, text=f"The answer is {answer}.{said}")


def _hand_case() -> list[Record]:
    # pid: (stated confidence %, student right, teacher right, teacher completion tokens)
    table = {
        "a": (90, True, True, 100),
        "b": (80, True, False, 200),
        "c": (60, False, True, 300),
        "d": (30, False, True, 400),
        "e": (10, True, True, None),
    }
    rs = []
    for pid, (pct, s, t, tok) in table.items():
        rs.append(rec(pid, "teacher", t, completion_tokens=tok))
        rs.append(_stated(pid, s, pct))
    return rs


def test_hand_computed_curve_match_and_aurc() -> None:
    m = compute_metrics(_hand_case(), {})
    r = m["tasks"]["t"]["routing"]
    assert list(r) == KEYS
    assert r["confidence_source"] == "stated" and r["n"] == 5 and r["reason"] is None
    # routed first: e (10%), d, c, b, a. With k routed the system gets right:
    # k=0: a b e (3); k=1: e via teacher, still 3; k=2: + d -> 4; k=3: + c -> 5;
    # k=4: b via teacher (wrong) -> 4; k=5: the teacher alone, 4.
    acc = [3 / 5, 3 / 5, 4 / 5, 5 / 5, 4 / 5, 4 / 5]
    tokens = [0, 0, 400, 700, 900, 1000]  # e's teacher record has no token count: 0
    assert r["student_accuracy"] == 0.6 and r["teacher_accuracy"] == 0.8
    assert len(r["curve"]) == 21
    for i, point in enumerate(r["curve"]):
        k = math.ceil(i * 5 / 20)  # 0, then 1 for i=1..4, 2 for 5..8, 3, 4, 5 for 17..20
        assert point == {
            "fraction": pytest.approx(i * 0.05, abs=1e-9),
            "accuracy": pytest.approx(acc[k], abs=1e-6),
            "teacher_tokens": tokens[k],
        }
    assert [p["teacher_tokens"] for p in r["curve"][:6]] == [0, 0, 0, 0, 0, 400]
    # teacher 0.8, within 0.01 first at k=2
    assert r["fraction_to_match_teacher"] == 0.4 and r["tokens_to_match_teacher"] == 400
    assert r["teacher_tokens_known"] is False
    # kept most confident first: a b c d e, student right 1 1 0 0 1;
    # risk at k=1..5: 0, 0, 1/3, 2/4, 2/5
    assert r["aurc"] == pytest.approx((1 / 3 + 2 / 4 + 2 / 5) / 5, abs=1e-6)
    # perfect ranking: 3 right then 2 wrong: 0, 0, 0, 1/4, 2/5
    assert r["aurc_optimal"] == pytest.approx((1 / 4 + 2 / 5) / 5, abs=1e-6)
    # one task: the pooled part is the same
    assert m["overall"]["routing"] == r


def test_fraction_to_match_is_exact_not_on_the_grid() -> None:
    # least confident item 0 is the student's only miss; routing 1 of 3 matches the teacher
    order = routing_order([0.2, 0.5, 0.9], ["t"] * 3, ["x", "y", "z"], [0, 0, 0])
    assert order.tolist() == [0, 1, 2]
    got = routing_stats(order, [False, True, True], [True, True, True], [7, 11, 13])
    assert got["fraction_to_match_teacher"] == round(1 / 3, 6)
    assert got["tokens_to_match_teacher"] == 7
    # the grid first reaches k=1 at 0.05 (ceil(0.05 * 3) = 1) and k=2 at 0.35
    assert [p["accuracy"] for p in got["curve"][:2]] == [round(2 / 3, 6), 1.0]
    assert got["curve"][7]["teacher_tokens"] == 18 and got["curve"][6]["teacher_tokens"] == 7


def test_the_match_is_the_fewest_routed_within_a_point_of_the_teacher() -> None:
    ids, tasks, zeros = list("abcd"), ["t"] * 4, [0] * 4
    # the student is right exactly where the teacher is wrong: equal accuracies, no routing
    order = routing_order([0.1, 0.2, 0.9, 0.8], tasks, ids, zeros)
    got = routing_stats(order, [False, False, True, True], [True, True, False, False], [1] * 4)
    assert got["fraction_to_match_teacher"] == 0.0 and got["tokens_to_match_teacher"] == 0
    # three misses, all less confident than the one right answer: hand over all three
    order = routing_order([0.1, 0.2, 0.3, 0.9], tasks, ids, zeros)
    got = routing_stats(order, [False, False, False, True], [True] * 4, [1, 2, 4, 8])
    assert got["fraction_to_match_teacher"] == 0.75 and got["tokens_to_match_teacher"] == 7
    # the one right answer least confident: only routing everything reaches the teacher
    order = routing_order([0.9, 0.8, 0.7, 0.1], tasks, ids, zeros)
    got = routing_stats(order, [False, False, False, True], [True] * 4, [1, 2, 4, 8])
    assert got["fraction_to_match_teacher"] == 1.0 and got["tokens_to_match_teacher"] == 15


def _naive(conf: list[float], sc: list[bool], tc: list[bool], tok: list[int]) -> dict[str, Any]:
    """The same numbers with plain loops, over an order sorted by Python."""
    n = len(conf)
    order = sorted(range(n), key=lambda i: (conf[i], f"p{i:05d}"))
    acc = []
    for k in range(n + 1):
        routed = set(order[:k])
        acc.append(sum((tc[i] if i in routed else sc[i]) for i in range(n)) / n)
    keep = order[::-1]
    aurc = sum(sum(not sc[i] for i in keep[:k]) / k for k in range(1, n + 1)) / n
    right = sum(sc)
    best = sum(max(0, k - right) / k for k in range(1, n + 1)) / n
    match = next(k for k in range(n + 1) if acc[k] >= acc[n] - 0.01 - 1e-12)
    curve = []
    for i in range(21):
        k = -(-i * n // 20)
        curve.append((acc[k], sum(tok[j] for j in order[:k])))
    return {"acc": acc, "aurc": aurc, "best": best, "match": match / n, "curve": curve}


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (7, 2), (40, 3), (101, 4)])
def test_vectorised_numbers_match_plain_loops(n: int, seed: int) -> None:
    rng = random.Random(seed)
    conf = [rng.choice([0.1, 0.3, 0.5, 0.7, 0.9]) for _ in range(n)]  # many ties
    sc = [rng.random() < c for c in conf]
    tc = [rng.random() < 0.8 for _ in range(n)]
    tok = [rng.randrange(0, 500) for _ in range(n)]
    order = routing_order(conf, ["t"] * n, [f"p{i:05d}" for i in range(n)], [0] * n)
    got = routing_stats(order, sc, tc, tok)
    want = _naive(conf, sc, tc, tok)
    assert got["student_accuracy"] == pytest.approx(want["acc"][0], abs=1e-6)
    assert got["teacher_accuracy"] == pytest.approx(want["acc"][-1], abs=1e-6)
    assert [(p["accuracy"], p["teacher_tokens"]) for p in got["curve"]] == [
        (pytest.approx(a, abs=1e-6), t) for a, t in want["curve"]
    ]
    assert got["aurc"] == pytest.approx(want["aurc"], abs=1e-6)
    assert got["aurc_optimal"] == pytest.approx(want["best"], abs=1e-6)
    assert got["fraction_to_match_teacher"] == pytest.approx(want["match"], abs=1e-6)


def test_a_perfect_ranking_reaches_the_optimal_aurc_and_a_reversed_one_does_not() -> None:
    rng = np.random.default_rng(5)
    right = rng.random(300) < 0.7
    noise = rng.random(300) * 0.4
    perfect = np.where(right, 0.6, 0.0) + noise  # every right answer above every wrong one
    ids = [f"p{i}" for i in range(300)]
    args = (["t"] * 300, ids, [0] * 300)
    tc = np.ones(300, dtype=bool)
    good = routing_stats(routing_order(perfect, *args), right, tc, np.ones(300))
    assert good["aurc"] == good["aurc_optimal"] > 0
    bad = routing_stats(routing_order(-perfect, *args), right, tc, np.ones(300))
    assert bad["aurc_optimal"] == good["aurc_optimal"]
    assert bad["aurc"] > good["aurc"] + 0.1
    # wrong ones first: within 0.01 of the teacher (always right) with 3 of 300 still wrong
    wrong = int((~right).sum())
    assert good["fraction_to_match_teacher"] == round((wrong - 3) / 300, 6)


def test_logprob_confidence_orders_the_items_at_both_keys() -> None:
    rs: list[Record] = []
    for task in ("x", "y"):
        for i, lp in enumerate([-3.0, -0.1, -1.0]):
            rs.append(rec(f"p{i}", "teacher", True, task=task))
            rs.append(rec(f"p{i}", "student", i != 0, task=task, logprobs=(lp,) * 6))
    m = compute_metrics(rs, {})
    for r in (m["tasks"]["x"]["routing"], m["tasks"]["y"]["routing"], m["overall"]["routing"]):
        assert r["confidence_source"] == "logprob" and r["reason"] is None
        # the one miss (p0) is the least confident: one routed item matches the teacher
        assert r["fraction_to_match_teacher"] == round(1 / 3, 6)
        assert r["tokens_to_match_teacher"] == 10 * (r["n"] // 3)
        assert r["aurc"] == r["aurc_optimal"]
        assert r["teacher_tokens_known"] is True
    assert m["overall"]["routing"]["n"] == 6 and m["tasks"]["x"]["routing"]["n"] == 3
    assert list(m["tasks"]["x"])[-1] == "routing"


def test_the_run_s_confidence_option_picks_the_source() -> None:
    rs = _hand_case()
    # logprobs that rank the other way round from the stated confidences
    rs = [
        Record.from_dict({**r.to_dict(), "logprobs": [-0.1 * (len(rs) - j)] * 4})
        if r.role == "student"
        else r
        for j, r in enumerate(rs)
    ]
    auto = compute_metrics(rs, {})["tasks"]["t"]["routing"]
    chosen = compute_metrics(rs, {}, MetricOptions(confidence="logprob"))["tasks"]["t"]["routing"]
    assert auto["confidence_source"] == "stated" and chosen["confidence_source"] == "logprob"
    assert chosen["aurc"] != auto["aurc"]
    missing = compute_metrics(_hand_case(), {}, MetricOptions(confidence="logprob"))
    assert list(missing["tasks"]["t"]["routing"]) == ["reason"]
    assert "logprob" in missing["tasks"]["t"]["routing"]["reason"]


def test_no_confidence_no_teacher_or_no_pairs_give_a_reason_and_nothing_else() -> None:
    plain = [rec("a", "teacher", True), rec("a", "student", False), rec("b", "teacher", True)]
    plain.append(rec("b", "student", True))
    m = compute_metrics(plain, {})  # one sample, no logprobs, nothing stated
    for r in (m["tasks"]["t"]["routing"], m["overall"]["routing"]):
        assert list(r) == ["reason"] and "no confidence" in r["reason"]

    m = compute_metrics([_stated("a", True, 80)], {})
    assert list(m["tasks"]["t"]["routing"]) == ["reason"]
    assert "no teacher" in m["tasks"]["t"]["routing"]["reason"]
    assert list(m["overall"]["routing"]) == ["reason"]

    ungraded = [rec("a", "teacher", None), _stated("a", True, 80)]
    r = compute_metrics(ungraded, {})["tasks"]["t"]["routing"]
    assert list(r) == ["reason"] and "graded" in r["reason"]

    silent = [rec("a", "teacher", True), rec("a", "student", False, answer=None)]
    r = compute_metrics(silent, {})["tasks"]["t"]["routing"]
    assert list(r) == ["reason"] and "no answer" in r["reason"]


def test_an_answer_without_confidence_is_routed_first() -> None:
    rs = [rec(p, "teacher", True) for p in "abc"]
    rs += [_stated("a", True, 10), _stated("b", True, 20)]
    rs.append(rec("c", "student", False, answer=None))  # nothing to be confident about
    r = compute_metrics(rs, {})["tasks"]["t"]["routing"]
    assert r["n"] == 3 and r["confidence_source"] == "stated"
    assert r["fraction_to_match_teacher"] == round(1 / 3, 6)
    assert r["aurc"] == r["aurc_optimal"]


def test_ties_are_broken_by_task_problem_and_sample_whatever_the_record_order() -> None:
    rs: list[Record] = []
    for task in ("a", "b"):
        # p0: only the teacher is right, p1: only the student; every confidence is 50%
        rs += [rec("p0", "teacher", True, task=task), rec("p1", "teacher", False, task=task)]
        rs += [_stated("p0", False, 50, task=task), _stated("p1", True, 50, task=task)]
    m = compute_metrics(rs, {})
    r = m["tasks"]["a"]["routing"]
    # p0 goes first: routing one of two gets both right (p1 first would get none)
    assert [r["curve"][i]["accuracy"] for i in (0, 10, 20)] == [0.5, 1.0, 0.5]
    o = m["overall"]["routing"]
    # pooled order a/p0, a/p1, b/p0, b/p1: 2 of 4 right at first, 3/4 after a/p0 routed, then
    # 2/4 after a/p1, 3/4 after b/p0, 2/4 with all four routed
    assert [o["curve"][i]["accuracy"] for i in (0, 5, 10, 15, 20)] == [0.5, 0.75, 0.5, 0.75, 0.5]
    shuffled = list(rs)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        again = compute_metrics(shuffled, {})
        assert again["overall"]["routing"] == o and again["tasks"]["a"]["routing"] == r


def test_every_student_sample_is_an_item_with_its_paired_teacher_record() -> None:
    rs = [rec("a", "teacher", True, completion_tokens=50)]
    rs += [_stated("a", i == 0, 90 - 10 * i, sample=i) for i in range(4)]
    r = compute_metrics(rs, {})["tasks"]["t"]["routing"]
    assert r["n"] == 4  # one teacher sample serves all four student samples
    assert r["curve"][-1]["teacher_tokens"] == 200
    assert r["fraction_to_match_teacher"] == 0.75 and r["tokens_to_match_teacher"] == 150


def test_many_items_are_fast() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    conf = rng.random(n)
    sc = rng.random(n) < conf
    tc = rng.random(n) < 0.9
    tok = rng.integers(0, 2000, n)
    ids = np.array([f"p{i}" for i in range(n)])
    start = time.perf_counter()
    got = routing_stats(routing_order(conf, np.full(n, "t"), ids, np.zeros(n)), sc, tc, tok)
    assert time.perf_counter() - start < 5.0
    assert got["curve"][-1]["teacher_tokens"] == int(tok.sum())
    # a confidence that carries signal beats chance (whose AURC is the error rate)
    assert got["aurc"] < 1 - got["student_accuracy"] - 0.05
