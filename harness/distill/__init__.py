"""Distillation aimed at diagnosed failures: collect teacher chains, mix them by a recipe (and a
run's failure labels), train the student with TRL (SFT, GRPO) and re-evaluate it on the held-out
items of each diagnosed slice. One module per stage; the heavy libraries (datasets, TRL, PEFT,
torchao) are imported inside the functions that need them.
"""

from __future__ import annotations

from harness.distill.collect import CollectResult, collect, completion_text, load_rows
from harness.distill.mix import Recipe, build_mix, mix, read_diagnosis

__all__ = [
    "CollectResult",
    "Recipe",
    "build_mix",
    "collect",
    "completion_text",
    "load_rows",
    "mix",
    "read_diagnosis",
]
