"""`numeric`: new numbers with the gold recomputed.

GSM8K on the real test file: the graphs reproduce the originals, at least 90% of the problems
get a variant, the reference teacher scores 1.000 on them with the task's own grader, and an
independent sympy re-solve agrees on every gold. chains through its own solver; MATH-500 /
AIME closed forms checked against latex2sympy. Determinism, distinct variants, and the cost of
the whole stage (numeric + compose over GSM8K).
"""

from __future__ import annotations

import random
import re
import time
from fractions import Fraction

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.gsm8k_graph import (
    Graph,
    Skip,
    _extract,
    extract_graph,
    graph_of,
    like,
    plain,
    resample,
    sympy_gold,
)
from harness.perturb.numeric import chain_valid, closed_form, evaluate_latex, read_chain
from harness.tasks import DataSource, get_task
from harness.tasks import chains as chains_task

JANET = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day at "
    "the farmers' market?",
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 "
    "every day at the farmer’s market.\n#### 18",
)


def _context(task, problems):
    return Context(task.name, task.kind, tuple(problems), {})


def _scores(task, variants):
    return task.score_many([(ReferenceBackend.solution(v), v) for v in variants])


def _values(graph: Graph, variant) -> dict[str, Fraction]:
    """The input values a variant was made with, read back from its params."""
    values = dict(graph.original)
    for name, change in variant.meta["perturb"]["params"]["numbers"].items():
        assert plain(graph.quantity(name).value) == change["from"]
        values[name] = Fraction(change["to"])
    return values


@pytest.fixture(scope="module")
def gsm8k(data_dir):
    task = get_task("gsm8k")
    return task, task.load(DataSource(data_dir, hub=False)).problems


@pytest.fixture(scope="module")
def gsm8k_variants(gsm8k):
    task, problems = gsm8k
    return perturb_problems(problems, _context(task, problems), ["numeric"], seed=0)


# --- the graph on small examples -----------------------------------------------------------


def test_graph_reads_numbers_words_and_constants():
    graph = extract_graph(*JANET)
    assert isinstance(graph, Graph)
    assert {plain(q.value) for q in graph.inputs} == {"16", "3", "4", "2"}
    assert graph.gold(graph.original) == 18
    names = {plain(q.value): q.name for q in graph.inputs}
    values = {**graph.original, names["16"]: Fraction(20), names["3"]: Fraction(5)}
    assert graph.check(values) is None and graph.gold(values) == 22
    question = graph.render_question(values)
    assert "lay 20 eggs" in question and "She eats five for breakfast" in question
    solution = graph.render_solution(values)
    assert "20 - 5 - 4 = <<20-5-4=11>>11" in solution and solution.endswith("#### 22")
    assert graph.render_solution(values, annotations=False).splitlines()[-1] == "#### 22"
    assert sympy_gold(graph, values) == 22


def test_graph_percent_money_and_consistent_counts():
    graph = extract_graph(
        "One glass costs $5, but every second glass costs only 60% of the price. Kylar wants "
        "to buy 16 glasses. How much does he need to pay?",
        "The discount price of one glass is 60/100 * 5 = $<<60/100*5=3>>3.\n"
        "He buys 16 / 2 = <<16/2=8>>8 cheaper glasses.\n"
        "He pays 8 * 3 = $<<8*3=24>>24 for them and 8 * 5 = $<<8*5=40>>40 for the others.\n"
        "In total 24 + 40 = $<<24+40=64>>64.\n#### 64",
    )
    assert isinstance(graph, Graph)
    pct = next(q for q in graph.inputs if q.percent)
    assert pct.value == 60
    # an odd count or a price that leaves cents off the 60% are rejected, not rounded
    names = {plain(q.value): q.name for q in graph.inputs}
    assert graph.check({**graph.original, names["16"]: Fraction(15)}) is not None
    ok = {**graph.original, names["16"]: Fraction(20), pct.name: Fraction(40)}
    assert graph.check(ok) is None and graph.gold(ok) == 10 * 2 + 10 * 5


def test_graph_skips_what_it_cannot_recompute():
    algebra = extract_graph(
        "Gretchen has 110 coins. There are 30 more gold coins than silver coins. How many gold "
        "coins does Gretchen have?",
        "Let x be the number of silver coins.\nx+x+30=110\n2*x=80\nx=<<40=40>>40\n"
        "Gretchen has 40+30=<<40+30=70>>70 gold coins\n#### 70",
    )
    assert isinstance(algebra, Skip) and "does not compute" in algebra.reason
    rounded = extract_graph("Split 10 apples among 3.", "10/3=<<10/3=3.33>>3.33\n#### 3.33")
    assert isinstance(rounded, Skip) and "not its exact value" in rounded.reason
    none = extract_graph("What is 2 and 2?", "It is four.\n#### 4")
    assert isinstance(none, Skip)


def test_graph_keeps_what_was_worked_out_in_the_head():
    # 5 = Maria and her 4 friends, never computed: kept, and so is the 4 it comes from
    graph = extract_graph(
        "Maria invited 4 of her friends. Each girl got 3 balloons and 12 more were left. How "
        "many balloons were there?",
        "There are 5 girls * 3 balloons = <<5*3=15>>15 balloons.\n"
        "With the rest, 15 + 12 = <<15+12=27>>27 balloons.\n#### 27",
    )
    assert isinstance(graph, Graph)
    assert graph.mental == (Fraction(5),)
    assert {plain(q.value) for q in graph.inputs} == {"3", "12"}


def test_graph_ambiguous_readings_must_agree():
    # `6` in 6+4 is the result 2+4; in 10x6 it is the 6 tickets: either way only if they agree
    graph = extract_graph(
        "Pam rode 2 times and Fred rode 4 times. Each of them rode the luge 2 times. Each ride "
        "cost 6 tickets. How many tickets did they use?",
        "Rides: 2+4=<<2+4=6>>6.\nLuge: 2+2=<<2+2=4>>4.\nAll: 6+4=<<6+4=10>>10.\n"
        "Tickets: 10x6=<<10*6=60>>60.\n#### 60",
    )
    assert isinstance(graph, Graph)
    assert graph.ties
    values = resample(graph, random.Random(0))
    assert values is not None and graph.check(values) is None  # the check includes the ties
    names = {plain(q.value): q.name for q in graph.inputs}
    apart = {**graph.original, names["4"]: Fraction(5)}  # 2+5 is no longer the 6 tickets
    assert graph.check(apart) == "an ambiguous number would take two values"


def test_like_keeps_the_written_style():
    assert like("80,000", Fraction(51500)) == "51,500"
    assert like("15.00", Fraction(17)) == "17.00"
    assert like(".5", Fraction(3, 4)) == ".75"
    assert like("2.5", Fraction(3)) == "3"


# --- gsm8k on the real test file -----------------------------------------------------------


def test_gsm8k_graphs_reproduce_the_originals(gsm8k):
    _, problems = gsm8k
    graphs = 0
    for p in problems:
        graph = graph_of(p)
        if isinstance(graph, Skip):
            continue
        graphs += 1
        assert graph.render_question(graph.original) == p.question, p.id
        assert graph.gold(graph.original) == Fraction(p.answer), p.id
        body = graph.render_solution(graph.original, annotations=False).rpartition("####")[0]
        assert body.strip() == p.reference.rpartition("####")[0].strip(), p.id
    assert graphs >= 0.9 * len(problems)


def test_gsm8k_coverage_and_reference_teacher(gsm8k, gsm8k_variants):
    task, problems = gsm8k
    out = gsm8k_variants
    covered = out.covered("numeric")
    skipped = sorted(((n, why) for (_, why), n in out.skipped.items()), reverse=True)
    assert covered + sum(n for n, _ in skipped) == len(problems)
    assert covered / len(problems) >= 0.90, f"{covered}/{len(problems)}; skipped: {skipped}"
    scores = _scores(task, out.variants)
    wrong = [v.id for v, s in zip(out.variants, scores, strict=True) if not s.correct]
    assert not wrong, wrong[:5]
    by_id = {p.id: p for p in problems}
    for v in out.variants:
        parent = by_id[v.parent_id]
        assert v.question != parent.question and v.reference.endswith(f"#### {v.answer}")
        assert v.meta["perturb"]["kind"] == "numeric" and v.meta["perturb"]["params"]["numbers"]
        assert re.fullmatch(r"-?\d+(\.\d+)?", v.answer), v.answer


def test_gsm8k_independent_resolver_agrees(gsm8k, gsm8k_variants):
    """Every generated gold again, from the annotations' own text through sympy."""
    _, problems = gsm8k
    by_id = {p.id: p for p in problems}
    for v in gsm8k_variants.variants:
        graph = graph_of(by_id[v.parent_id])
        assert isinstance(graph, Graph)
        values = _values(graph, v)
        assert sympy_gold(graph, values) == Fraction(v.answer), v.id
        for q in graph.inputs:  # the question states the new numbers
            if values[q.name] != q.value:
                assert any(
                    like(graph.mentions[k].text, values[q.name]) in v.question
                    or graph.mentions[k].word
                    for k in q.mentions
                ), (v.id, q.name)


def test_gsm8k_variant_solution_reads_back(gsm8k_variants):
    """A variant's recomputed annotated solution is again a graph giving its gold."""
    back = 0
    for v in gsm8k_variants.variants:
        graph = extract_graph(v.question, v.meta["solution"])
        if isinstance(graph, Graph):
            back += 1
            assert graph.gold(graph.original) == Fraction(v.answer), v.id
    assert back >= 0.9 * len(gsm8k_variants.variants)


def test_gsm8k_per_problem_three_are_distinct(gsm8k):
    task, problems = gsm8k
    some = problems[:150]
    out = perturb_problems(some, _context(task, problems), ["numeric"], per_problem=3, seed=0)
    by_parent: dict[str, list[str]] = {}
    for v in out.variants:
        by_parent.setdefault(v.parent_id, []).append(v.question)
    assert len(by_parent) >= 0.85 * len(some)
    assert all(len(set(qs)) == len(qs) for qs in by_parent.values())
    assert sum(len(qs) == 3 for qs in by_parent.values()) >= 0.8 * len(by_parent)
    ids = [v.id for v in out.variants]
    assert len(set(ids)) == len(ids)


def test_determinism(gsm8k):
    task, problems = gsm8k
    some, ctx = problems[:80], _context(task, problems)
    a = perturb_problems(some, ctx, ["numeric"], seed=0)
    b = perturb_problems(some, ctx, ["numeric"], seed=0)
    c = perturb_problems(some, ctx, ["numeric"], seed=1)
    assert [v.to_dict() for v in a.variants] == [v.to_dict() for v in b.variants]
    assert [v.question for v in a.variants] != [v.question for v in c.variants]
    chains = get_task("chains")
    cps = chains.load(DataSource(None, hub=False)).problems
    x = perturb_problems(cps, _context(chains, cps), ["numeric"], seed=3)
    y = perturb_problems(cps, _context(chains, cps), ["numeric"], seed=3)
    z = perturb_problems(cps, _context(chains, cps), ["numeric"], seed=4)
    assert [v.question for v in x.variants] == [v.question for v in y.variants]
    assert [v.question for v in x.variants] != [v.question for v in z.variants]


def test_cost_of_numeric_and_compose_over_gsm8k(gsm8k):
    """The stage's budget is a minute for all kinds; these two take well under 20 s."""
    task, problems = gsm8k
    _extract.cache_clear()
    start = time.perf_counter()
    out = perturb_problems(problems, _context(task, problems), ["numeric", "compose"], seed=5)
    spent = time.perf_counter() - start
    assert out.covered("numeric") > 0 and out.covered("compose") > 0
    assert spent < 20, f"numeric + compose over {len(problems)} problems took {spent:.1f} s"


# --- chains --------------------------------------------------------------------------------


def test_chains_new_numbers_same_telling():
    task = get_task("chains")
    problems = task.load(DataSource(None, hub=False)).problems
    out = perturb_problems(problems, _context(task, problems), ["numeric"], per_problem=2)
    assert out.covered("numeric") == len(problems)
    assert all(s.correct for s in _scores(task, out.variants))
    by_id = {p.id: p for p in problems}
    for v in out.variants:
        parent = by_id[v.parent_id]
        chain = read_chain(v)
        assert not isinstance(chain, Skip)
        assert [op.kind for op in chain.ops] == [k for k, _ in parent.meta["ops"]]
        assert v.meta["family"] == parent.meta["family"] and v.subset == parent.subset
        assert chain_valid(chain.start, chain.ops)
        answer, reference = chains_task.solve(chain.start, chain.ops)
        assert v.answer == str(answer) and v.reference == reference
        # only the numbers change: the filler words are the original's
        assert re.sub(r"\d+", "#", v.question) == re.sub(r"\d+", "#", parent.question)
        assert v.meta["start"] == chain.start and len(v.meta["ops"]) == v.meta["depth"]


# --- math / aime closed forms --------------------------------------------------------------


def test_evaluate_latex():
    assert evaluate_latex(r"\dbinom{16}{5}") == 4368
    assert evaluate_latex(r"\left\lceil 3.7 \right\rceil") == 4
    assert evaluate_latex(r"3^4 - 5\cdot 8") == 41
    assert evaluate_latex(r"\frac{1}{5}\cdot \frac{8}{7}\div \frac{12}{20}") == Fraction(8, 21)
    assert evaluate_latex(r"\frac59 + 4!") == Fraction(5, 9) + 24
    assert evaluate_latex(r"(26^2 - 24^2 - 10)^2 - 10^2") == 8000


@pytest.mark.parametrize("name", ["math500", "aime24", "aime25"])
def test_closed_forms(data_dir, name):
    from latex2sympy2_extended import latex2sympy

    task = get_task(name)
    problems = task.load(DataSource(data_dir, hub=False)).problems
    out = perturb_problems(problems, _context(task, problems), ["numeric"], seed=0)
    forms = [p for p in problems if not isinstance(closed_form(p), Skip)]
    assert out.covered("numeric") == len(forms)
    if name == "math500":
        assert len(forms) >= 5
    reasons = {why for (_, why) in out.skipped}
    assert all(why.startswith(f"{name}: ") for why in reasons)
    assert all(s.correct for s in _scores(task, out.variants))
    for v in out.variants:
        expr = v.meta["perturb"]["params"]["expression"]
        assert expr in v.question
        independent = latex2sympy(expr)
        assert float(independent.evalf()) == pytest.approx(float(evaluate_latex(expr)))
        assert evaluate_latex(expr) == Fraction(str(latex2sympy(v.answer)))
