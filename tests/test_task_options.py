"""Task options come from each task's declaration: parsed and checked in one place, listed by
`harness tasks --task NAME`, and tasks (built-in or not) come from one lazy registry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.options import describe, option
from harness.registry import Registry
from harness.tasks import REGISTRY, TASKS, DataSource, Loaded, Task, get_task
from harness.tasks.aime import AIME, AIMEOptions
from harness.tasks.bbh import BBH, BBHOptions
from harness.tasks.chains import Chains, ChainsOptions
from harness.tasks.grading.extract import Extraction
from harness.tasks.lmeval import LMEvalOptions, LMEvalTask
from harness.types import Generation, Problem
from tests.conftest import cli

NONE = DataSource(None, hub=False)


def _error(spec: str) -> str:
    """The one line a bad spec fails with."""
    with pytest.raises(HarnessError) as e:
        get_task(spec)
    text = str(e.value)
    assert "\n" not in text, text
    return text


# -- each task's own options -------------------------------------------------------------------


def test_chains_options_parse_into_their_declaration() -> None:
    task = get_task("chains:depth=2-4,family=shop+bank,n=3,seed=1")
    assert isinstance(task, Chains)
    assert task.opts == ChainsOptions(depth="2-4", family="shop+bank", n=3, seed=1)
    assert task.depths == [2, 3, 4] and [f.name for f in task.families] == ["shop", "bank"]
    assert (task.per_cell, task.seed) == (3, 1)
    one = get_task("chains:depth=7")
    assert isinstance(one, Chains) and one.depths == [7]
    assert get_task("chains").opts == ChainsOptions()  # defaults: the whole grid


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("chains:depth=0-3", "outside 1-12"),
        ("chains:depth=4-2", "outside 1-12"),
        ("chains:depth=x", "not N or A-B"),
        ("chains:family=poem", "unknown family poem"),
        ("chains:n=0", "task chains: n= takes a whole number >= 1, not '0'"),
        ("chains:n=1.5", "n= takes a whole number >= 1"),
        ("chains:seed=-1", "seed= takes a whole number >= 0, not '-1'"),
        ("chains:depht=3", "unknown option(s) depht; did you mean 'depth'?"),
        ("chains:colour=red", "known: depth, family, n, seed"),
    ],
)
def test_chains_bad_options(spec: str, fragment: str) -> None:
    assert fragment in _error(spec)


def test_aime_year() -> None:
    for spec in ("aime:2024", "aime:year=2024"):
        task = get_task(spec)
        assert isinstance(task, AIME)
        assert task.opts == AIMEOptions(year=2024) and task.years == (2024,)
        assert task.spec == "aime:2024" and task.options == {"year": "2024"}
    both = get_task("aime")
    assert isinstance(both, AIME) and both.years == (2024, 2025)
    assert "year '2023' is not one of 2024, 2025" in _error("aime:2023")
    assert "year= takes a whole number, not 'abc'" in _error("aime:abc")
    # aime24 is one year already: it takes no options, positional or not
    assert "unknown option(s) year; it takes none" in _error("aime24:year=2024")
    assert "is not key=value" in _error("aime24:2024")


def test_bbh_subtask() -> None:
    for spec in ("bbh:navigate", "bbh:subtask=navigate"):
        task = get_task(spec)
        assert isinstance(task, BBH)
        assert task.opts == BBHOptions(subtask="navigate") and task.subtasks == ["navigate"]
        assert task.spec == "bbh:navigate"
    every = get_task("bbh")
    assert isinstance(every, BBH) and len(every.subtasks) == 27
    assert "unknown subtask 'navigat'; did you mean navigate" in _error("bbh:navigat")
    line = _error("bbh:navigate,web_of_lies")
    assert "write --tasks bbh:navigate,bbh:web_of_lies" in line


def test_lmeval_options(tmp_path: Path) -> None:
    spec = f"lmeval:gsm8k,fewshot=5,chat=1,include={tmp_path},filter=flexible-extract"
    task = get_task(spec)
    assert isinstance(task, LMEvalTask)
    assert task.opts == LMEvalOptions(
        task="gsm8k", include=str(tmp_path), fewshot=5, chat=True, filter="flexible-extract"
    )
    assert (task.task_name, task.fewshot, task.chat) == ("gsm8k", 5, True)
    # the spec (records, run ids, cache keys) leaves out the machine's include folder, and the
    # options keep the lm-eval task apart, as before the options were declared
    assert task.spec == "lmeval:gsm8k,fewshot=5,chat=1,filter=flexible-extract"
    assert "task" not in task.options
    assert get_task("lmeval:fewshot=0,gsm8k").spec == "lmeval:gsm8k,fewshot=0"
    off = get_task("lmeval:gsm8k,chat=0")
    assert isinstance(off, LMEvalTask) and off.chat is False


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("lmeval:gsm8k,fewshot=-1", "task lmeval: fewshot= takes a whole number >= 0, not '-1'"),
        ("lmeval:gsm8k,fewshot=few", "fewshot= takes a whole number >= 0"),
        ("lmeval:gsm8k,chat=maybe", "chat= takes 1 or 0, not 'maybe'"),
        ("lmeval:gsm8k,fewshots=3", "unknown option(s) fewshots; did you mean 'fewshot'?"),
        ("lmeval:gsm8k,arc_easy", "write --tasks lmeval:gsm8k,lmeval:arc_easy"),
    ],
)
def test_lmeval_bad_options(spec: str, fragment: str) -> None:
    assert fragment in _error(spec)


def test_lmeval_without_a_task_is_listed_but_cannot_load() -> None:
    """`harness tasks` and the runner's default set build every registered name, so a bare
    `lmeval` builds; it is never in the default set and says what to write when loaded."""
    task = get_task("lmeval")
    assert task.spec == "lmeval" and not task.default_run and not task.available(NONE)
    with pytest.raises(HarnessError, match="name the lm-eval task"):
        task.load(NONE)


def test_tasks_without_options_say_so() -> None:
    assert "task math500: unknown option(s) foo; it takes none" in _error("math500:foo=1")
    assert "is not key=value (example: chains:depth=1-4,n=3)" in _error("gsm8k:main")


# -- the registry ------------------------------------------------------------------------------


def test_unknown_task_suggests_close_names() -> None:
    line = _error("gsm8kk")
    assert "unknown task 'gsm8kk'; did you mean 'gsm8k'?" in line
    assert "run `harness tasks`" in line
    assert "did you mean 'mbpp-sanitized'" in _error("mbpp_sanitized")


def test_registry_keeps_its_older_name_and_its_uses() -> None:
    assert REGISTRY is TASKS
    names = sorted(REGISTRY)
    assert {"chains", "gsm8k", "bbh", "aime", "lmeval"} <= set(names)
    assert "bbh" in REGISTRY and "gsm8kk" not in REGISTRY and len(REGISTRY) == len(names)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_builds_bare_and_declares_its_options(name: str) -> None:
    task = get_task(name)
    assert task.spec == name and task.options == {}
    infos = describe(task.options_type)
    assert all(o.help for o in infos), name
    if task.positional:
        assert task.positional in {o.name for o in infos}


@dataclass(frozen=True)
class ToyOptions:
    """A test task's options."""

    size: int = option(2, "how many problems", low=1)
    word: str = option("yes", "the gold answer", choices=("yes", "no"))


class Toy(Task):
    """A task defined outside harness: registered by one line, built through get_task."""

    name = "toy"
    description = "a toy task from a test module"
    kind = "text"
    positional = "word"
    options_type = ToyOptions
    opts: ToyOptions

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        problems = [
            Problem(
                id=f"toy-{i}",
                task=self.name,
                question=f"Say {self.opts.word}.",
                answer=self.opts.word,
            )
            for i in range(self.opts.size)
        ]
        return Loaded(problems[:limit], "generated")

    def extract(self, text: str) -> Extraction | None:
        word = text.strip().rstrip(".").lower()
        return Extraction(word, "bare") if word else None

    def grade(self, answer: str, problem: Problem) -> bool:
        return answer == problem.answer


@pytest.fixture
def toy() -> Iterator[None]:
    TASKS.register("toy", f"{__name__}:Toy")
    try:
        yield
    finally:
        TASKS.unregister("toy")


def test_a_task_from_elsewhere_registers_in_one_line(toy: None) -> None:
    assert "toy" in TASKS
    task = get_task("toy:no,size=3")
    assert isinstance(task, Toy) and task.opts == ToyOptions(size=3, word="no")
    assert task.spec == "toy:no,size=3"
    problems = task.load(NONE).problems
    assert [p.answer for p in problems] == ["no"] * 3
    assert task.score(Generation(text="No.", finish_reason="stop"), problems[0]).correct
    assert "toy: word= takes one of yes, no, not 'maybe'" in _error("toy:maybe")
    assert "size= takes a whole number >= 1, not '0'" in _error("toy:size=0")


def test_registry_refuses_what_is_not_a_task(toy: None) -> None:
    TASKS.register("toy", "harness.tasks.base:DataSource")
    assert "is not a subclass of harness.tasks.base.Task" in _error("toy")
    TASKS.register("toy", "tests.no_such_module:Toy")
    assert "cannot import tests.no_such_module:Toy" in _error("toy")


def test_entry_points_add_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a third-party package's `harness.tasks` entry point does."""
    import harness.registry

    seen: list[str] = []

    def fake(group: str) -> list[EntryPoint]:
        seen.append(group)
        return [EntryPoint("toy", f"{__name__}:Toy", group)]

    monkeypatch.setattr(harness.registry, "entry_points", fake)
    fresh = Registry[Task](
        "task", Task, {"chains": "harness.tasks.chains:Chains"}, group="harness.tasks"
    )
    assert sorted(fresh) == ["chains", "toy"] and seen == ["harness.tasks"]
    assert fresh.load("toy") is Toy


def test_importing_the_registry_stays_cheap() -> None:
    """Listing names imports no task module; building an lm-eval task imports no lm_eval."""
    code = (
        "import sys; import harness.tasks as t; names = sorted(t.TASKS); "
        "before = [m for m in sys.modules if m.startswith('harness.tasks.') and "
        "m.split('.')[2] in ('chains', 'bbh', 'gsm8k', 'lmeval')]; "
        "t.get_task('lmeval:gsm8k,fewshot=2'); t.get_task('bbh:navigate'); "
        "print(before, 'lm_eval' in sys.modules, 'datasets' in sys.modules)"
    )
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert got.stdout.split() == ["[]", "False", "False"], got.stdout + got.stderr


# -- `harness tasks --task NAME` -----------------------------------------------------------------


def test_tasks_command_lists_a_tasks_options() -> None:
    proc = cli("tasks", "--task", "chains")
    assert proc.returncode == 0, proc.stderr
    listing, _, options = proc.stdout.partition("chains options")
    assert "gsm8k" in listing and "generated" in listing  # what `harness tasks` shows, first
    for text in ("depth", "1-12", "family", "shop+bank+bus+garden+symbolic", "seed"):
        assert text in options
    assert "int >= 1" in options and "problems per depth and family" in options
    same = cli("tasks", "chains")
    assert same.returncode == 0 and "chains options" in same.stdout


def test_tasks_command_for_a_task_without_options_and_an_unknown_one() -> None:
    proc = cli("tasks", "--task", "gsm8k")
    assert proc.returncode == 0 and "task gsm8k takes no options" in proc.stdout
    proc = cli("tasks", "--task", "gsm8kk")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "did you mean 'gsm8k'" in lines[0] and "Traceback" not in proc.stderr
