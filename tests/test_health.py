"""Reasoning health: loops, cycles, language mixing, hesitations, think blocks, over-thinking."""

from __future__ import annotations

import pytest

from harness.metrics import compute_metrics
from harness.metrics.health import (
    has_cycle,
    health_summary,
    mixed_language,
    record_health,
    repeated_ngram_share,
    think_state,
)
from harness.metrics.segment import segment_steps
from tests.metrics_records import make_record as rec

CHAIN = (
    "Tom has 5 apples. He buys 3 more, so 5 + 3 = 8.\n\n"
    "Then he gives away 2: 8 - 2 = 6.\nThe price is 3.5 dollars each. So he has 6 apples."
)


def test_segmentation_keeps_decimals_and_equations_whole():
    assert segment_steps(CHAIN) == [
        "Tom has 5 apples.",
        "He buys 3 more, so 5 + 3 = 8.",
        "Then he gives away 2: 8 - 2 = 6.",
        "The price is 3.5 dollars each.",
        "So he has 6 apples.",
    ]
    assert segment_steps("- step one\n2. step two\n---\n") == ["step one", "step two"]


def test_repeated_ngram_share_by_hand():
    assert repeated_ngram_share(["a", "b", "c", "d", "e", "f"]) == 0.0
    # 8 words, 5 4-grams: (a b c d) (b c d a) (c d a b) (d a b c) (a b c d) -> 4 distinct
    words = ["a", "b", "c", "d"] * 2
    assert repeated_ngram_share(words) == pytest.approx(1 - 4 / 5)


def test_cycle_detector():
    steps = ["Compute 8 - 2.", "So x = 6.", "Wait, check again."]
    assert not has_cycle(steps)
    assert has_cycle(["Start."] + ["Let me check.", "So x = 6."] * 3)
    assert has_cycle(["x = 6."] * 3)
    assert not has_cycle(["Let me check.", "So x = 6."] * 2)  # twice is not a loop


def test_looping_output_is_flagged():
    loop = "The answer is 6. " * 30
    h = record_health(rec("a", text=loop, answer="6"))
    assert h["loop"] and h["cycle"] and h["repeated_ngram_share"] > 0.8
    assert not record_health(rec("a", text=CHAIN, answer="6"))["loop"]


def test_language_mixing_counts_tokens_outside_the_dominant_script():
    text = "First we add the numbers 所以答案是 then we are done with it all"
    share, script, outside = mixed_language(text)
    assert script == "latin" and outside == 5  # five ideographs, one token each
    assert share == pytest.approx(5 / (12 + 5))
    assert record_health(rec("a", text=text))["mixed_language"]
    assert mixed_language("Let θ = 2π, then sin θ = 0")[2] == 0  # Greek math letters ignored
    assert mixed_language("Считаем: 5 + 3 = 8, ответ восемь")[1] == "cyrillic"


def test_hesitations_per_1k_tokens():
    r = rec(
        "a",
        reasoning="Wait, that is wrong. Alternatively, hmm, let me double-check.",
        text="6",
        answer="6",
        completion_tokens=40,
    )
    h = record_health(r)
    assert h["hesitations"] == 4 and h["hesitations_per_1k"] == pytest.approx(100.0)
    assert h["reasoning_tokens"] + h["answer_tokens"] == 40


def test_think_states():
    assert think_state(rec("a", reasoning="work", text="6")) == "ok"
    assert think_state(rec("a", reasoning="  ", text="6")) == "empty"
    assert think_state(rec("a", reasoning="work", text="6 </think> 7")) == "malformed"
    cut = rec("a", correct=False, answer=None, reasoning="never ends", text="", truncated=True)
    assert think_state(cut) == "unclosed"
    assert think_state(rec("a", text="6")) == "none"


def test_summary_rates_and_token_means():
    rs = [
        rec("a", text="The answer is 6. " * 30, answer="6", sample=0),
        rec("b", text=CHAIN, answer="6", finish_reason="length", truncated=True, sample=0),
        rec("c", text=CHAIN, answer="6"),
        rec("d", correct=None, answer=None, finish_reason="missing", error="missing"),
    ]
    h = health_summary(rs)
    assert h["n"] == 3
    assert h["loop_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert h["truncated_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert h["answer_tokens_mean"] == 10.0 and h["token_count"] == "model"
    assert h["reasoning_tokens_mean"] is None and "reasoning format" in h["reasoning_tokens_reason"]


def test_overthinking_ratio_on_easy_items():
    rs = [
        rec("easy", sample=0, completion_tokens=100, steps=2),
        rec("easy", sample=1, completion_tokens=300, steps=2),
        rec("hard", correct=False, sample=0, completion_tokens=500),
        rec("hard", sample=1, completion_tokens=500),
    ]
    o = compute_metrics(rs, {})["tasks"]["t"]["student"]["health"]["overthinking"]
    assert o["easy_items"] == 1 and o["ratio"] == 2.0
    assert o["easy_tokens_mean"] == 200.0 and o["tokens_per_step"] == 100.0
    single = compute_metrics([rec("a")], {})["tasks"]["t"]["student"]["health"]["overthinking"]
    assert single["ratio"] is None and "--samples" in single["reason"]


def test_stray_think_tags_are_seen_wherever_they_are():
    from harness.tasks.grading.extract import split_reasoning

    # An answer, then a stray tag: the answer is graded, the record is malformed.
    reasoning, text, closed = split_reasoning("<think>a</think>So 18.</think>", True)
    assert (text.replace("</think>", "").strip(), closed) == ("So 18.", True)
    assert think_state(rec("a", reasoning=reasoning, text=text)) == "malformed"
    # Two closing tags with text after each: the first one's text stays in the reasoning.
    reasoning, text, _ = split_reasoning("<think>a</think>b</think>c", True)
    assert (reasoning, text) == ("a</think>b", "c")
    assert think_state(rec("a", reasoning=reasoning, text=text)) == "malformed"
    assert think_state(rec("a", reasoning="x <think> y", text="6")) == "malformed"


def test_leaked_chat_turn_is_counted():
    leaked = rec("a", text="It is 2/3. I hope it is correct.<|im_start|>user\nNext?")
    clean = rec("b", text="It is 2/3.")
    assert record_health(leaked)["leaked_turn"] and not record_health(clean)["leaked_turn"]
    assert health_summary([leaked, clean])["leaked_turn_rate"] == 0.5
