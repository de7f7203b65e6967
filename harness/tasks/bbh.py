"""BIG-Bench Hard: 27 subtasks (6511 problems), `bbh` for all or `bbh:<subtask>` for one.

Each subtask has its own answer type, and the answer is normalized for that type before an
exact match: an option letter, True/False, Yes/No, valid/invalid, a number, a word sequence
(word_sorting) or a sequence of closing brackets (dyck_languages). `cot-fewshot` uses BBH's own
3-shot chain-of-thought prompts, read at run time from `<data dir>/bbh/cot-prompts/`.

Three items have a gold written as text because the dataset split their options at commas
(movie_recommendation "Monsters, Inc"; ruin_names "dearth, wind, & fire" and "rita, sue and
bob poo"): they are graded by text, and no option letter can match them.

An `options` variant of a multiple-choice item rewrites the input's `Options:` block in its new
order and labels (`relabel_options`); its gold stays the letter of the gold's position, and an
answer given in the shown labels (`3`, `III`) is read back as that letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.options import option
from harness.prompts import CHOICE_INSTRUCTION, R1_MATH_INSTRUCTION, choice_instruction
from harness.tasks.base import DataSource, HubSplit, Loaded, Task, read_json
from harness.tasks.grading.choice import label_of, last_label, norm_text
from harness.tasks.grading.extract import (
    LETTERS,
    Extraction,
    extract_choice,
    extract_final_answer,
    last_number,
    stated_answers,
    unwrap_latex,
)
from harness.tasks.grading.numeric import parse_number
from harness.tasks.multiple_choice import shown_labels
from harness.types import Message, Problem

# The BIG-Bench-Hard data as a hub dataset (one config per subtask, split "test"); this commit
# is the one a public evaluation manifest pins. Not re-verified here (no hub access).
HUB = ("lukaemon/bbh", "982bb89fd79532a8ac676a61fc42eb1aeec63f99")

CHOICE = "choice"
ANSWER_TYPES: dict[str, str] = {
    "boolean_expressions": "bool",
    "causal_judgement": "yesno",
    "date_understanding": CHOICE,
    "disambiguation_qa": CHOICE,
    "dyck_languages": "dyck",
    "formal_fallacies": "validity",
    "geometric_shapes": CHOICE,
    "hyperbaton": CHOICE,
    "logical_deduction_five_objects": CHOICE,
    "logical_deduction_seven_objects": CHOICE,
    "logical_deduction_three_objects": CHOICE,
    "movie_recommendation": CHOICE,
    "multistep_arithmetic_two": "number",
    "navigate": "yesno",
    "object_counting": "number",
    "penguins_in_a_table": CHOICE,
    "reasoning_about_colored_objects": CHOICE,
    "ruin_names": CHOICE,
    "salient_translation_error_detection": CHOICE,
    "snarks": CHOICE,
    "sports_understanding": "yesno",
    "temporal_sequences": CHOICE,
    "tracking_shuffled_objects_five_objects": CHOICE,
    "tracking_shuffled_objects_seven_objects": CHOICE,
    "tracking_shuffled_objects_three_objects": CHOICE,
    "web_of_lies": "yesno",
    "word_sorting": "words",
}
SIZES = {name: 250 for name in ANSWER_TYPES} | {
    "causal_judgement": 187,
    "penguins_in_a_table": 146,
    "snarks": 178,
}
_OPTION = re.compile(r"^\(([A-Z])\)\s?(.*)$")
_BRACKETS = set("()[]{}<>")


def parse_options(text: str) -> tuple[str, ...]:
    """The `(A) text` lines after `Options:` in a BBH input."""
    _, found, tail = text.partition("Options:")
    if not found:
        return ()
    out: list[str] = []
    for line in tail.strip().splitlines():
        m = _OPTION.match(line.strip())
        if not m:
            break
        if m.group(1) != LETTERS[len(out)]:
            break
        out.append(m.group(2).strip())
    return tuple(out)


def relabel_options(text: str, choices: Sequence[str], labels: Sequence[str]) -> str | None:
    """The input with its `Options:` block rewritten as `(label) text` lines (an `options`
    variant's new order and labels), the text around it kept; None when the input has no
    block of as many `(A) ...` lines as there are choices."""
    head, found, tail = text.partition("Options:")
    if not found or len(choices) != len(labels):
        return None
    lines = tail.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    start = i
    while i < len(lines) and i - start < len(LETTERS):
        m = _OPTION.match(lines[i].strip())
        if not m or m.group(1) != LETTERS[i - start]:  # the block `parse_options` reads
            break
        i += 1
    if i - start != len(choices):
        return None
    block = [f"({label}) {choice}" for label, choice in zip(labels, choices, strict=True)]
    return head + found + "\n".join([*lines[:start], *block, *lines[i:]])


def normalize(kind: str, answer: str) -> str | None:
    """An answer in its type's canonical form, or None when it is not of that type."""
    if kind in ("bool", "yesno", "validity"):
        return label_of(answer, kind)
    if kind == "number":
        value = parse_number(unwrap_latex(answer))
        if value is None:
            return None
        return str(value.numerator) if value.denominator == 1 else str(float(value))
    if kind == "dyck":
        symbols = [c for c in answer.replace("\\", "") if c in _BRACKETS]
        return " ".join(symbols) or None
    if kind == "words":
        words = re.findall(r"[^\s,;\"'`]+", norm_text(answer))
        return " ".join(w.strip(".") for w in words if w.strip(".")) or None
    raise ValueError(f"unknown BBH answer type {kind}")


def extract_typed(
    text: str,
    kind: str,
    choices: tuple[str, ...],
    labels: Sequence[str] | None = None,
) -> Extraction | None:
    """Stated answers first (boxed, final-answer phrase, Answer: line) read as the subtask's
    type; then the type's lenient fallback (the last label or number in the text). `labels`:
    the option labels an `options` variant shows instead of letters."""
    if kind == CHOICE:
        return extract_choice(text, choices, labels=labels)
    for answer, rule in stated_answers(text):
        norm = normalize(kind, answer)
        if norm is not None:
            return Extraction(norm, rule)
    if kind in ("bool", "yesno", "validity"):
        label = last_label(text, kind)
        if label is not None:
            return Extraction(label, "last_label", lenient=True)
    if kind == "number":
        num = last_number(text)
        norm = normalize(kind, num) if num is not None else None
        if norm is not None:
            return Extraction(norm, "last_number", lenient=True)
    return None


def gold_of(kind: str, target: str, choices: tuple[str, ...], where: str) -> str:
    """The target in its canonical form: a letter for options (text for the three items whose
    gold names no option), a normalized label, number or sequence otherwise."""
    if kind == CHOICE:
        m = re.fullmatch(r"\(([A-Z])\)", target.strip())
        if m:
            if LETTERS.index(m.group(1)) >= len(choices):
                raise HarnessError(f"{where}: target {target} is not one of the options")
            return m.group(1)
        return target.strip()
    norm = normalize(kind, target)
    if norm is None:
        raise HarnessError(f"{where}: target '{target}' is not a valid {kind} answer")
    return norm


@dataclass(frozen=True)
class BBHOptions:
    """`bbh:<subtask>` or `bbh:subtask=<subtask>`: one subtask instead of all 27. Checked by
    the task, which suggests close names (27 choices are too many to print in one line)."""

    subtask: str | None = option(
        None, f"one subtask (all {len(ANSWER_TYPES)} when left out): {', '.join(ANSWER_TYPES)}"
    )


class BBH(Task):
    name = "bbh"
    description = "BIG-Bench Hard, 27 subtasks (bbh:<subtask> for one), typed exact match"
    kind = "text"
    positional = "subtask"
    options_type = BBHOptions
    opts: BBHOptions

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        super().__init__(options)
        sub = self.opts.subtask
        if sub is not None and sub not in ANSWER_TYPES:
            close = [n for n in ANSWER_TYPES if sub in n or n.startswith(sub[:6])]
            raise HarnessError(
                f"bbh: unknown subtask '{sub}'"
                + (f"; did you mean {', '.join(close[:3])}?" if close else "")
                + f" (one of {len(ANSWER_TYPES)}: {', '.join(sorted(ANSWER_TYPES))})"
            )
        self.subtasks = [sub] if sub else sorted(ANSWER_TYPES)
        self._source: DataSource | None = None

    def available(self, source: DataSource) -> bool:
        return all(source.local("bbh", "bbh", f"{s}.json") for s in self.subtasks)

    def size(self, source: DataSource) -> int | None:
        return sum(SIZES[s] for s in self.subtasks)

    def read_local(self, path: Path) -> list[tuple[str, dict]]:
        """A BBH file is {"examples": [{"input", "target"}, ...]}."""
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
            raise HarnessError(f'{path}: expected {{"examples": [...]}} (BBH layout)')
        return [(f"{path} example {i}", r) for i, r in enumerate(data["examples"])]

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        """All subtasks interleaved one item at a time, so a --limit prefix spans them all."""
        self._source = source
        per: list[list[Problem]] = []
        from_hub = False
        for subtask in self.subtasks:
            rows = self.read_rows(
                source,
                local_files=(f"bbh/bbh/{subtask}.json",),
                hub_split=HubSplit(HUB[0], subtask, HUB[1]),
            )
            from_hub |= rows.from_hub
            per.append(
                [self._problem(subtask, i, row, loc) for i, (loc, row) in enumerate(rows.items)]
            )
        problems = [p for group in _interleave(per) for p in group]
        if not from_hub:
            where = f"local folder {source.data_dir / 'bbh' / 'bbh'}"  # type: ignore[operator]
        else:
            where = f"hub {HUB[0]}@{HUB[1][:12]}"
        return Loaded(problems[:limit] if limit is not None else problems, where)

    def _problem(self, subtask: str, index: int, row: dict, where: str) -> Problem:
        try:
            text, target = str(row["input"]), str(row["target"])
        except KeyError as e:
            raise HarnessError(f"{where}: BBH row lacks {e}; expected input, target") from e
        kind = ANSWER_TYPES[subtask]
        choices = parse_options(text) if kind == CHOICE else ()
        if kind == CHOICE and not choices:
            raise HarnessError(f"{where}: no '(A) ...' options after 'Options:'")
        return Problem(
            id=f"bbh/{subtask}-{index}",
            task=self.name,
            question=text,
            answer=gold_of(kind, target, choices, where),
            reference=f"So the answer is {target}.",
            choices=choices,
            subset=subtask,
            meta={"target": target, "answer_type": kind},
        )

    # -- prompting ------------------------------------------------------------------------
    def render(self, problem: Problem) -> str:
        return problem.question  # BBH inputs already list their options

    def instruction(self, problem: Problem) -> str:
        if problem.meta.get("answer_type") == CHOICE:
            label = problem.meta.get("label_style", "letter")
            form = problem.meta.get("answer_format", "boxed")
            if label == "letter" and form == "boxed":
                return CHOICE_INSTRUCTION
            return choice_instruction(label, form)
        return R1_MATH_INSTRUCTION

    def prompt(self, problem: Problem, style: str = "r1") -> list[Message]:
        if style != "cot-fewshot":
            return super().prompt(problem, style)
        shots = self.cot_prompt(problem.subset or "")
        return [Message("user", f"{shots}\n\nQ: {problem.question}\nA: Let's think step by step.")]

    def cot_prompt(self, subtask: str) -> str:
        """BBH's own 3-shot CoT prompt for a subtask (data, read from the data dir at run time),
        without its canary header."""
        path = self._source.local("bbh", "cot-prompts", f"{subtask}.txt") if self._source else None
        if path is None:
            raise HarnessError(
                "bbh: the cot-fewshot style reads BBH's own prompts from <data dir>/bbh/"
                f"cot-prompts/{subtask}.txt; pass --data-dir (or set HARNESS_DATA_DIR) to a "
                "folder that has them"
            )
        text = path.read_text(encoding="utf-8")
        _, sep, body = text.partition("\n-----\n")
        return (body if sep else text).strip()

    # -- grading --------------------------------------------------------------------------
    def extract(self, text: str) -> Extraction | None:
        return extract_final_answer(text)

    def extract_answer(self, text: str, problem: Problem) -> Extraction | None:
        kind = problem.meta["answer_type"]
        labels = shown_labels(problem) if kind == CHOICE else None
        return extract_typed(text, kind, problem.choices, labels)

    def grade(self, answer: str, problem: Problem) -> bool:
        kind = problem.meta["answer_type"]
        if kind == CHOICE:
            if len(problem.answer) == 1:
                return answer.strip().upper() == problem.answer
            return norm_text(answer) == norm_text(problem.answer)
        return normalize(kind, answer) == problem.answer

    def same_answer(self, a: str, b: str) -> bool:
        return norm_text(a) == norm_text(b)


def _interleave(groups: list[list[Problem]]) -> list[list[Problem]]:
    """Round-robin: the i-th item of every group, for i = 0, 1, ..."""
    longest = max((len(g) for g in groups), default=0)
    return [[g[i] for g in groups if i < len(g)] for i in range(longest)]
