"""`lmeval:<task>`: an lm-eval `generate_until` task run through harness.

lm-eval's own task objects build every prompt (few-shot examples drawn with lm-eval's seed, its
templates, its chat rendering when `chat=1`) and score every output (its filters, then its
metric per item); harness generates through its backends and cache and writes its records. The
item's metric must be right/wrong (exact_match and the like), since a record is right or wrong.

Spec: `lmeval:<task name | path/to/task.yaml>[,include=DIR][,fewshot=N][,chat=1]
[,filter=NAME][,metric=NAME]` (declared in `LMEvalOptions`; the lm-eval task is the positional
option). `include` is lm-eval's --include_path (a folder of task YAMLs). A group (several
lm-eval tasks) runs each member as a subset of this task.

Sampling is the model's (and the run's flags), as for every harness task, so the same model
gives the same generations under every task; the task's `until` strings cut the text before
lm-eval's filters see it, exactly as lm-eval's own models return it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.console import info
from harness.errors import HarnessError
from harness.lmeval import (
    FEWSHOT_SEED,
    context_messages,
    cut_at,
    encode_chat,
    require_lmeval,
    stop_strings,
)
from harness.options import option
from harness.tasks.base import DataSource, Loaded, Task
from harness.tasks.grading.extract import Extraction
from harness.types import Generation, Message, Problem, Score


@dataclass(frozen=True)
class LMEvalOptions:
    """What `lmeval:<task>,...` takes. The task name is kept apart from `Task.options` (as it
    always was): it is part of the spec's head, not one of its key=value options."""

    task: str = option("", "the lm-eval task: a name, a group, or a path to a task YAML")
    include: str | None = option(
        None, "a folder of task YAMLs (lm-eval's --include_path); not part of the task's spec"
    )
    fewshot: int | None = option(
        None, "few-shot examples (default: the task's own num_fewshot)", low=0
    )
    chat: bool = option(False, "1: lm-eval's chat turns through the model's template")
    filter: str | None = option(None, "lm-eval filter to read answers with (default: the first)")
    metric: str | None = option(
        None, "right/wrong per-item metric to grade with (default: the first)"
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


class LMEvalTask(Task):
    name = "lmeval"
    description = "an lm-eval generate_until task, prompted and scored by lm-eval"
    kind = "text"

    positional = "task"
    default_run = False
    options_type = LMEvalOptions
    opts: LMEvalOptions

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        self.task_name = self.options.pop("task", "")
        self.chat = self.opts.chat
        self.fewshot = self.opts.fewshot
        self._tasks: dict[str, Any] = {}
        self._filters: dict[str, Any] = {}
        self._metric: dict[str, str] = {}

    def origin(self, source: DataSource) -> str:
        return "lm-eval"

    @property
    def spec(self) -> str:
        if not self.task_name:  # the family as `harness tasks` lists it
            return self.name
        shown = [f"{k}={v}" for k, v in self.options.items() if k != "include"]
        return f"lmeval:{self.task_name}" + "".join("," + s for s in shown)

    # -- lm-eval's task objects --------------------------------------------------------------
    def _load_tasks(self) -> dict[str, Any]:
        if self._tasks:
            return self._tasks
        if not self.task_name:  # checked here: `harness tasks` and the default set list `lmeval`
            raise HarnessError(
                "lmeval: name the lm-eval task, e.g. --tasks lmeval:gsm8k or "
                "lmeval:path/to/task.yaml"
            )
        require_lmeval()
        from lm_eval.tasks import TaskManager

        include = self.opts.include
        if include and not Path(include).expanduser().is_dir():
            raise HarnessError(f"task {self.spec}: include={include} is not a folder")
        target = self.task_name
        if target.endswith((".yaml", ".yml")):
            path = Path(target).expanduser()
            if not path.is_file():
                raise HarnessError(f"task {self.spec}: no task file {path}")
            target = str(path.resolve())
        logging.getLogger("lm_eval").setLevel(logging.WARNING)
        paths = str(Path(include).expanduser()) if include else None
        loaded = None
        if paths or target != self.task_name:
            # A task of one's own: indexing lm-eval's 1000+ built-in YAMLs takes seconds, so
            # look in the given folder or file alone first (it may still include built-ins).
            try:
                loaded = TaskManager(include_path=paths, include_defaults=False).load([target])
            except Exception:  # noqa: BLE001 - not found alone: try with the built-ins below
                loaded = None
        if loaded is None or not loaded["tasks"]:
            try:
                loaded = TaskManager(include_path=paths).load([target])
            except Exception as e:  # noqa: BLE001 - lm-eval raises many kinds: "cannot load"
                raise HarnessError(
                    f"task {self.spec}: lm-eval cannot load it ({_first_line(e)}); check the "
                    "name (`lm_eval ls tasks`), include=, and that its dataset is reachable"
                ) from e
        tasks = loaded["tasks"]
        if not tasks:
            raise HarnessError(f"task {self.spec}: lm-eval found no task by that name")
        for name, task in tasks.items():
            kind = task.get_config("output_type")
            if kind != "generate_until":
                raise HarnessError(
                    f"task {self.spec}: lm-eval task {name} is {kind}, but harness runs "
                    "generate_until tasks only (it scores generated text); run loglikelihood "
                    "tasks with lm-eval's own models"
                )
            self._setup(name, task)
        self._tasks = dict(tasks)
        return self._tasks

    def _setup(self, name: str, task: Any) -> None:
        """What lm-eval's simple_evaluate does to a task before it runs, plus our choices."""
        if self.fewshot is not None and task.get_config("num_fewshot") != 0:
            task.set_config(key="num_fewshot", value=self.fewshot)
        elif task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=FEWSHOT_SEED)
        ensembles = {f.name: f for f in getattr(task, "_filters", [])}
        chosen = self.opts.filter or next(iter(ensembles), None)
        if chosen not in ensembles:
            raise HarnessError(
                f"task {self.spec}: lm-eval task {name} has no filter '{chosen}'; "
                f"it has: {', '.join(ensembles) or 'none'}"
            )
        self._filters[name] = ensembles[chosen]
        metrics = list(task._metric_fn_list)
        metric = self.opts.metric or (metrics[0] if metrics else None)
        if metric is None or metric not in metrics:
            raise HarnessError(
                f"task {self.spec}: lm-eval task {name} has no metric '{metric}'; "
                f"it has: {', '.join(metrics) or 'none'}"
            )
        self._metric[name] = metric

    def filter_name(self, subtask: str) -> str:
        self._load_tasks()
        return self._filters[subtask].name

    def metric_name(self, subtask: str) -> str:
        self._load_tasks()
        return self._metric[subtask]

    # -- data ---------------------------------------------------------------------------------
    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        tasks = self._load_tasks()
        problems: list[Problem] = []
        for name, task in tasks.items():
            try:
                task.build_all_requests(
                    limit=limit,
                    rank=0,
                    world_size=1,
                    apply_chat_template=self.chat,
                    fewshot_as_multiturn=self.chat,
                    chat_template=encode_chat if self.chat else None,
                    tokenizer_name="harness" if self.chat else "",
                )
            except HarnessError:
                raise
            except Exception as e:  # noqa: BLE001 - a dataset that will not load, a bad template
                raise HarnessError(
                    f"task {self.spec}: lm-eval could not build the prompts of {name} "
                    f"({_first_line(e)}); is its dataset reachable?"
                ) from e
            for inst in task.instances:
                problems.append(self._problem(name, task, inst, len(tasks) > 1))
        if self.chat:
            for p in problems:  # fail before any model loads if a prompt cannot be sent
                context_messages(p.meta["context"])
        info(
            f"{self.spec}: lm-eval's {'chat' if self.chat else 'raw'} prompts; scored by "
            + ", ".join(f"{n}: {self._filters[n].name}/{self._metric[n]}" for n in tasks)
            + "; sampling is the model's (lm-eval's until strings cut the text)"
        )
        return Loaded(problems, f"lm-eval task {self.task_name}")

    def _problem(self, name: str, task: Any, inst: Any, group: bool) -> Problem:
        doc = inst.doc
        context, gen_kwargs = inst.args[0], inst.args[1]
        text = task.doc_to_text(doc)
        target = task.doc_to_target(doc)
        if task.config.doc_to_choice is not None and isinstance(target, int):
            target = task.doc_to_choice(doc)[target]
        return Problem(
            id=f"{name}-{inst.doc_id}",
            task=self.spec,
            question=text if isinstance(text, str) else context,
            answer=str(target),
            subset=name if group else None,
            meta={
                "lmeval_task": name,
                "doc": doc,
                "doc_id": inst.doc_id,
                "context": context,
                "until": stop_strings(gen_kwargs),
            },
        )

    def available(self, source: DataSource) -> bool:
        return False

    # -- prompting ----------------------------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        """lm-eval's context, as lm-eval built it; the prompt style does not apply."""
        return list(context_messages(problem.meta["context"]))

    # -- grading ------------------------------------------------------------------------------
    def filtered(self, text: str, problem: Problem) -> Any:
        """lm-eval's filter pipeline over one output (cut at `until` first)."""
        from lm_eval.api.instance import Instance

        name = problem.meta["lmeval_task"]
        cut, _ = cut_at(text, problem.meta["until"])
        inst = Instance(
            request_type="generate_until",
            doc=problem.meta["doc"],
            arguments=(problem.meta["context"], {"until": problem.meta["until"]}),
            idx=0,
            metadata=(name, problem.meta["doc_id"], 1),
        )
        inst.resps = [cut]
        self._filters[name].apply([inst])
        return inst.filtered_resps[self._filters[name].name]

    def item_metrics(self, filtered: Any, problem: Problem) -> dict[str, Any]:
        """lm-eval's per-item metrics for one filtered output."""
        task = self._load_tasks()[problem.meta["lmeval_task"]]
        return task.process_results(problem.meta["doc"], [filtered])

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        name = problem.meta["lmeval_task"]
        found = self.filtered(text, problem)
        shown = found if isinstance(found, str) else repr(found)
        return Extraction(shown, f"lmeval:{self._filters[name].name}")

    def extract(self, text: str) -> Extraction | None:
        """The filter over a text alone (a filter that reads the document sees none)."""
        tasks = self._load_tasks()
        name = next(iter(tasks))
        probe = Problem(
            id="",
            task=self.spec,
            question="",
            answer="",
            meta={"lmeval_task": name, "doc": {}, "doc_id": 0, "context": "", "until": []},
        )
        try:
            return self.extract_answer(text, probe)
        except Exception:  # noqa: BLE001 - a filter that needs the document
            return None

    def grade(self, answer: str, problem: Problem) -> bool:
        value = self.item_metrics(answer, problem)[self._metric[problem.meta["lmeval_task"]]]
        return bool(value)

    def score(self, generation: Generation, problem: Problem) -> Score:
        if not generation.ok:
            return Score(correct=None, detail=generation.error or "")
        if generation.reasoning_closed is False:
            return Score(
                correct=False, truncated=True, detail="reasoning never closed: no answer given"
            )
        self._load_tasks()
        name = problem.meta["lmeval_task"]
        _, stopped = cut_at(generation.text, problem.meta["until"])
        filtered = self.filtered(generation.text, problem)
        metric = self._metric[name]
        value = self.item_metrics(filtered, problem).get(metric)
        if isinstance(value, bool):
            value = int(value)
        if value not in (0, 1):
            raise HarnessError(
                f"task {self.spec}: lm-eval metric '{metric}' of {name} is not right/wrong per "
                f"item (got {value!r}); pass metric=<an exact-match-like metric>, or run the "
                "task with lm_eval --model harness"
            )
        shown = filtered if isinstance(filtered, str) else repr(filtered)
        return Score(
            correct=bool(value),
            answer=shown,
            extractor=f"lmeval:{self._filters[name].name}",
            truncated=generation.finish_reason == "length" and not stopped,
        )

    def same_answer(self, a: str, b: str) -> bool:
        return a.strip() == b.strip()
