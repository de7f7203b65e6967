"""LogiQA (English) test split: 651 reading-comprehension logic questions, 4 options each.

The local file keeps upstream quirks: most options start with `A.`, a few with `A ` or `A?`, a
few with no label at all. Labels in front of an option are removed only where they are
unambiguous (the option's own letter followed by punctuation, or by a space and a capital or
non-Latin word), so "A large dog" stays an option text.

In 19 rows the options are listed out of order (A, C, B, D) with their labels printed: the
answer letter names the printed label, not the position (checked by solving logiqa-108 and
logiqa-192, and it is how AGIEval's copy labels them), so such options are put back in label
order before they are shown as (A)-(D).
"""

from __future__ import annotations

import re

from harness.errors import HarnessError
from harness.tasks.base import DataSource, HubSplit, Loaded
from harness.tasks.grading.extract import LETTERS
from harness.tasks.multiple_choice import ChoiceTask, letter_reference
from harness.types import Problem

# lucasmccabe/logiqa's main branch is a loading script, which `datasets` no longer runs; this
# is the commit of its parquet conversion (refs/convert/parquet) pinned by a public evaluation
# project. Not independently re-verified here (no hub access).
HUB = HubSplit("lucasmccabe/logiqa", None, "fa9f9918fa81eca088805c1395d7f592f7755ae0")


def clean_option(text: str, letter: str) -> str:
    """An option without the label in front of it, where the label is unambiguous."""
    m = re.match(rf"^\s*{letter}\s*[.．?？:：)、]\s*(.*)$", text, re.S)
    if m and m.group(1).strip():
        return m.group(1).strip()
    m = re.match(rf"^\s*{letter}\s+([A-Z]|[^\x00-\x7f])(.*)$", text, re.S)
    if m:
        return (m.group(1) + m.group(2)).strip()
    return text.strip()


_LABEL = re.compile(r"^\s*([A-D])\s*[.．?？:：)、]")


def in_label_order(options: list[str]) -> list[str]:
    """Options whose printed labels are a permutation of A-D, sorted by label; others as is."""
    labels = [m.group(1) if (m := _LABEL.match(o)) else None for o in options]
    if None in labels or sorted(labels) != list("ABCD"):  # type: ignore[type-var]
        return options
    return [o for _, o in sorted(zip(labels, options, strict=True))]


def _problem(
    index: int, context: str, question: str, options: list, gold: str, where: str
) -> Problem:
    if len(options) != 4:
        raise HarnessError(f"{where}: LogiQA row has {len(options)} options, expected 4")
    ordered = in_label_order([str(o) for o in options])
    choices = tuple(clean_option(o, LETTERS[i]) for i, o in enumerate(ordered))
    return Problem(
        id=f"logiqa-{index}",
        task="logiqa",
        question=f"{context.strip()}\n{question.strip()}",
        answer=gold,
        reference=letter_reference(gold),
        choices=choices,
        meta={"options_raw": [str(o) for o in options], "reordered": ordered != options},
    )


class LogiQA(ChoiceTask):
    name = "logiqa"
    description = "LogiQA (English) test split: logical reasoning, 4 options, letter answer"

    local_files = ("logiqa/test.jsonl",)
    hub_split = HUB
    count = 651

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        rows = self.read_rows(source, limit)
        problems: list[Problem] = []
        for i, (where, row) in enumerate(rows.items):
            if rows.from_hub:  # the hub copy names its fields differently
                try:
                    gold = LETTERS[int(row["correct_option"])]
                    args = (row["context"], row["query"], list(row["options"]))
                except (KeyError, ValueError, IndexError) as e:
                    raise HarnessError(f"{where}: LogiQA hub row is malformed ({e})") from e
            else:
                try:
                    gold = str(row["answer"]).strip().upper()
                    args = (row["context"], row["question"], list(row["options"]))
                except KeyError as e:
                    raise HarnessError(
                        f"{where}: LogiQA row lacks {e}; expected answer, context, question, "
                        "options"
                    ) from e
                if gold not in "ABCD" or len(gold) != 1:
                    raise HarnessError(f"{where}: LogiQA answer '{gold}' is not a-d")
            problems.append(_problem(i, *args, gold, where))
        return Loaded(problems, rows.source)
