"""The `code-rename` kind: the function and its arguments renamed through the syntax tree in
prompt, tests and canonical solution, the docstring examples dropped or renamed. On the real
sets every renamed canonical solution passes its renamed tests in the sandbox, through the
task's own grading, and the old name is gone from the code."""

from __future__ import annotations

import ast
import random
import re
import time

import pytest

from harness.backends.reference import ReferenceBackend
from harness.perturb import Context, perturb_problems
from harness.perturb.base import Skip
from harness.perturb.code_rename import (
    CodeRename,
    docstring_node,
    drop_examples,
    is_identifier_like,
    name_words,
    parse,
    rename_prose,
    swap_words,
)
from harness.tasks import DataSource, get_task
from harness.tasks.code import fenced
from harness.types import Problem

KIND = CodeRename()
HE = Context("humaneval", "code")
MBPP = Context("mbpp", "code")


@pytest.fixture(scope="module")
def loaded(data_dir) -> dict[str, list[Problem]]:
    source = DataSource.resolve(data_dir)
    return {n: get_task(n).load(source).problems for n in ("humaneval", "mbpp", "mbpp-sanitized")}


def _variants(problems: list[Problem], name: str, per: int = 1, seed: int = 0):
    ctx = Context(name, "code")
    return perturb_problems(problems, ctx, ["code-rename"], per_problem=per, seed=seed)


def _humaneval(prompt: str, solution: str, test: str, entry: str) -> Problem:
    program = prompt + solution
    meta = {"prompt": prompt, "test": test, "entry_point": entry}
    return Problem("he-x", "humaneval", prompt, program, fenced(program), meta=meta)


def _mbpp(code: str, tests: list[str], question: str = "Write a function.") -> Problem:
    meta = {"task_id": 1, "tests": tests, "setup": "", "test": "\n" + "\n".join(tests)}
    return Problem("mbpp-x", "mbpp", question, code, fenced(code), meta=meta)


def _run(code: str, test: str) -> None:
    """Execute a program and its tests here (the synthetic ones below are harmless)."""
    scope: dict[str, object] = {}
    exec(compile(code + "\n" + test, "<t>", "exec"), scope)  # noqa: S102 - our own test code


def _tree(code: str) -> ast.Module:
    tree = parse(code)  # warnings of the data's own (invalid escapes) silenced
    assert tree is not None
    return tree


def _names(code: str) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(_tree(code)):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.arg)):
            out.add(node.name if isinstance(node, ast.FunctionDef) else node.arg)
    return out


def _function(code: str, name: str) -> ast.FunctionDef:
    return next(n for n in _tree(code).body if isinstance(n, ast.FunctionDef) and n.name == name)


def _doc(fn: ast.FunctionDef) -> str:
    node = docstring_node(fn)
    return str(node.value) if node is not None else ""


# -- names and prose ------------------------------------------------------------------------------


def test_names_and_prose():
    assert name_words("minPath") == ["min", "path"] and name_words("test_tup1") == ["test", "tup"]
    assert swap_words("string_to_md5", {"string": "text", "to": "into"}.get) == "text_into_md5"
    assert swap_words("minPath", {"min": "lowest", "path": "trail"}.get) == "lowestTrail"
    assert swap_words("is_prime", {"is": "check_if"}.get) == "check_if_prime"
    assert is_identifier_like("has_close_elements") and is_identifier_like("f")
    assert not is_identifier_like("maximum")
    args = {"a": "first", "b": "second", "s": "text"}
    assert (
        rename_prose("Given a side, return a and b.", None, args)
        == "Given a side, return first and second."
    )
    assert (
        rename_prose("the file's name 's' and s", None, args) == "the file's name 'text' and text"
    )
    fn = ("maximum", "greatest")
    assert (
        rename_prose("the maximum k numbers; maximum([1]) == 1; function maximum", fn, {})
        == "the maximum k numbers; greatest([1]) == 1; function greatest"
    )
    assert rename_prose("prime_fib returns n-th", ("prime_fib", "pf"), {"n": "k"}) == (
        "pf returns k-th"
    )


DOC = '''"""Return the sum of x and y. For example, add(2, 3) == 5.
    >>> add(1, 2)
    3

    Example 1:
        Input: x = 1, y = 2
        Output: 3

    add([
        1], 2) == 3
    add(4, 4) ➞ 8
    # both positive
    Note: x and y are ints.
    """'''


def test_drop_examples_keeps_the_description():
    dropped = drop_examples(DOC, "add")
    assert dropped is not None
    assert dropped.splitlines() == [
        '"""Return the sum of x and y.',
        "",
        "    Note: x and y are ints.",
        '    """',
    ]
    assert drop_examples('"""Add.\n    no examples here\n    """', "add").startswith('"""Add.')
    assert drop_examples('"""\n    >>> add(1, 2)\n    3\n    """', "add") is None  # nothing left


# -- programs -------------------------------------------------------------------------------------

PROMPT = '''from typing import List


def helper(v):
    return v


def count_up(numbers: List[int], step: int = 1) -> List[int]:
    """Count up from each of numbers by step.
    >>> count_up([1], step=2)
    [3]
    """
'''
SOLUTION = """    # count_up walks numbers once
    if not numbers:
        return []
    head = [helper(numbers[0] + step)]
    rest = count_up(numbers=numbers[1:], step=step)
    squares = [n * n for n in numbers]
    label = f"{step}:{len(numbers)}"
    fn = lambda step: step + 1  # a lambda parameter of the same name
    assert squares is not None and label and fn(0) == 1
    return head + rest
"""
TEST = """

METADATA = {}


def check(candidate):
    assert candidate([1, 2]) == [2, 3]
    assert candidate(numbers=[5], step=3) == [8]
    assert count_up([0]) == [1]
"""


def test_a_program_is_renamed_consistently():
    problem = _humaneval(PROMPT, SOLUTION, TEST, "count_up")
    v = KIND.apply(problem, random.Random(3), HE)
    assert isinstance(v, Problem)
    params = v.meta["perturb"]["params"]
    old, new = params["entry_point"]
    assert old == "count_up" and new != old and v.meta["entry_point"] == new
    assert set(params["arguments"]) == {"numbers", "step"}
    for code in (v.answer, v.meta["test"]):
        assert not re.search(r"\bcount_up\b", code)
        keywords = {k.arg for k in ast.walk(_tree(code)) if isinstance(k, ast.keyword)}
        assert not {"numbers", "step"} & (_names(code) | keywords)
    values, by = params["arguments"]["numbers"], params["arguments"]["step"]
    assert f"Count up from each of {values} by {by}." in v.meta["prompt"]  # the prose too
    assert f"# {new} walks {values} once" in v.answer
    assert v.answer.startswith(v.meta["prompt"]) and v.question == v.meta["prompt"]
    assert "def helper(v):" in v.answer  # other functions are left alone
    _run(v.answer, v.meta["test"] + f"\ncheck({new})\n")
    _run(problem.answer, problem.meta["test"] + "\ncheck(count_up)\n")
    assert v.reference == fenced(v.answer)


def test_mbpp_style_problem_and_attributes_left_alone():
    code = "def count(s, ch):\n    return s.count(ch) + len([c for c in s if c == ch]) * 0\n"
    tests = ["assert count('abca', 'a') == 2", "assert count('', 'a') == 0"]
    v = KIND.apply(_mbpp(code, tests, "Write a function to count ch in s."), random.Random(0), MBPP)
    assert isinstance(v, Problem)
    new = v.meta["entry_point"]
    assert ".count(" in v.answer and "def count(" not in v.answer
    assert all(t.startswith(f"assert {new}(") for t in v.meta["tests"])
    assert v.meta["test"] == "\n" + "\n".join(v.meta["tests"])
    assert v.question == "Write a function to count ch in s."  # "count" is a word here
    _run(v.answer, v.meta["test"])


@pytest.mark.parametrize(
    "problem, reason",
    [
        (_mbpp("def f(:\n  pass\n", ["assert f() is None"]), "does not parse"),
        (_mbpp("def f():\n  return 1\n", ["assert 1 == 1"]), "entry point not found"),
        (
            _mbpp("def f():\n  return 'f'\n", ["assert f() == 'f'", "assert eval('f()')"]),
            "inside a string literal",
        ),
        (
            _mbpp("def f(x):\n  return x\ndef g():\n  from os import f\n", ["assert f(1)"]),
            "is imported",
        ),
        (
            _mbpp(
                "def g(x):\n  def h():\n    global x\n    return x\n  return h()\n",
                ["assert g(1) is None or True"],
            ),
            "declared global",
        ),
    ],
)
def test_skips_say_why(problem, reason):
    got = KIND.apply(problem, random.Random(0), MBPP)
    assert isinstance(got, Skip) and reason in got.reason, got


# -- the real sets --------------------------------------------------------------------------------


def _check_variants(name: str, problems: list[Problem], out) -> None:
    parents = {p.id: p for p in problems}
    for v in out.variants:
        parent = parents[v.parent_id]
        params = v.meta["perturb"]["params"]
        old, new = params["entry_point"]
        assert v.meta["entry_point"] == new != old
        tests = [v.meta["test"]] if name == "humaneval" else [*v.meta["tests"], v.meta["setup"]]
        code = [v.answer, *tests]
        prose = v.meta["prompt"] if name == "humaneval" else v.question
        for piece in code:
            assert old not in _names(piece), (v.id, old)
            if is_identifier_like(old):
                assert not re.search(rf"(?<!\w){re.escape(old)}(?!\w)", piece), (v.id, old)
        if is_identifier_like(old):
            assert not re.search(rf"(?<!\w){re.escape(old)}(?!\w)", prose), (v.id, old)
        assert not re.search(rf"(?<![\w.]){re.escape(old)}\s*\(", prose), (v.id, old)
        entry, before = _function(v.answer, new), _function(parent.answer, old)
        renamed = params["arguments"]
        assert [a.arg for a in entry.args.args] == [renamed[a.arg] for a in before.args.args]
        inside = {n.id for n in ast.walk(entry) if isinstance(n, ast.Name)}
        assert not set(renamed) & inside - set(renamed.values()), v.id
        if name == "humaneval":
            assert v.answer.startswith(v.meta["prompt"]) and v.question == v.meta["prompt"]
            doc = _doc(entry)
            assert re.search(r"[A-Za-z]{3,}", doc), v.id  # the description stays
            if params["examples"] == "dropped":
                assert ">>>" not in doc and not re.search(rf"\b{new}\s*\(", doc), v.id
            elif re.search(rf"\b{old}\s*\(", _doc(before)):
                assert re.search(rf"\b{new}\s*\(", doc), v.id  # the examples, renamed
        else:
            assert v.meta["test"] == v.meta["setup"] + "\n" + "\n".join(v.meta["tests"])


def _sandbox(name: str, problems: list[Problem]) -> float:
    task = get_task(name)
    out = _variants(problems, name)
    assert out.covered("code-rename") == len(problems), out.skipped
    _check_variants(name, problems, out)
    t0 = time.perf_counter()
    scores = task.score_many([(ReferenceBackend.solution(v), v) for v in out.variants])
    seconds = time.perf_counter() - t0
    failed = [(v.id, s.detail) for v, s in zip(out.variants, scores, strict=True) if not s.correct]
    assert failed == [], failed[:5]
    assert {s.extractor for s in scores} == {"code_block"}
    return seconds


def test_humaneval_variants_pass_in_the_sandbox(loaded):
    seconds = _sandbox("humaneval", loaded["humaneval"])
    print(f"humaneval code-rename: 164/164 passed in {seconds:.1f}s")
    examples = {
        v.meta["perturb"]["params"]["examples"]
        for v in _variants(loaded["humaneval"], "humaneval").variants
    }
    assert examples == {"dropped", "renamed", "none"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mbpp", "mbpp-sanitized"])
def test_mbpp_variants_pass_in_the_sandbox(name, loaded):
    seconds = _sandbox(name, loaded[name])
    print(f"{name} code-rename: {len(loaded[name])} passed in {seconds:.1f}s")


def test_mbpp_variants_are_renamed_everywhere(loaded):
    """The checks of the slow sandbox test that need no sandbox, on every MBPP problem."""
    out = _variants(loaded["mbpp"], "mbpp")
    assert out.covered("code-rename") == 500, out.skipped
    _check_variants("mbpp", loaded["mbpp"], out)


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_deterministic_and_distinct(name, loaded):
    problems = loaded[name][:60]

    def surface(v: Problem) -> tuple[object, ...]:
        return (v.id, v.question, v.answer, v.reference, repr(v.meta))

    first, again = _variants(problems, name, per=3), _variants(problems, name, per=3)
    assert [surface(v) for v in first.variants] == [surface(v) for v in again.variants]
    other = _variants(problems, name, per=3, seed=1)
    assert [surface(v) for v in other.variants] != [surface(v) for v in first.variants]
    by_parent: dict[str, set[str]] = {}
    for v in first.variants:
        by_parent.setdefault(v.parent_id or "", set()).add(v.answer)
    assert all(len(answers) >= 2 for answers in by_parent.values())
    assert sum(len(a) == 3 for a in by_parent.values()) >= 0.8 * len(problems)
    a = KIND.apply(problems[0], random.Random("x"), Context(name, "code"))
    b = KIND.apply(problems[0], random.Random("x"), Context(name, "code"))
    assert isinstance(a, Problem) and surface(a) == surface(b)
