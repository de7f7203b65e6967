"""ARC-Challenge test split (1172 grade-school science questions, 3-5 options)."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.tasks.base import DataSource, HubSplit, Loaded
from harness.tasks.multiple_choice import ChoiceTask, labels_to_letters, letter_reference
from harness.types import Problem

HUB = HubSplit("allenai/ai2_arc", "ARC-Challenge", "210d026faf9955653af8916fad021475a3f00453")


def _problem(row: dict, where: str) -> Problem:
    try:
        choices, key = row["choices"], str(row["answerKey"])
        texts, labels = list(choices["text"]), [str(x) for x in choices["label"]]
        rid, question = str(row["id"]), row["question"]
    except (KeyError, TypeError) as e:
        raise HarnessError(
            f"{where}: ARC row lacks {e}; expected id, question, choices.text/label, answerKey"
        ) from e
    if len(texts) != len(labels) or len(texts) < 2:
        raise HarnessError(f"{where}: ARC row {rid} has mismatched choices")
    _, gold = labels_to_letters(labels, key, where)
    return Problem(
        id=rid,
        task="arc-challenge",
        question=question,
        answer=gold,
        reference=letter_reference(gold),
        choices=tuple(texts),
        meta={"dataset_labels": labels},
    )


class ARCChallenge(ChoiceTask):
    name = "arc-challenge"
    description = "ARC-Challenge test split: science questions, 3-5 options, letter answer"

    local_files = ("arc_challenge/test.jsonl",)
    hub_split = HUB
    count = 1172
    train_files = ("arc_challenge/train.jsonl",)
    train_split = HubSplit(HUB.repo, HUB.config, HUB.revision, "train")

    def load(self, source: DataSource, limit: int | None = None) -> Loaded:
        rows = self.read_rows(source, limit)
        return Loaded([_problem(row, loc) for loc, row in rows.items], rows.source)
