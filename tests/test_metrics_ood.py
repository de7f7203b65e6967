"""The OOD view: per perturbation kind, with paired deltas against the parent problems."""

from __future__ import annotations

import pytest

from harness.metrics import compute_metrics
from tests.metrics_records import make_record as rec


def _records():
    rs = []
    for i in range(4):
        for role in ("teacher", "student"):
            rs.append(rec(f"p{i}", role, True))
            # numbers changed: the student drops on half of the items, the teacher on none
            rs.append(
                rec(
                    f"p{i}~num",
                    role,
                    role == "teacher" or i % 2 == 0,
                    parent_id=f"p{i}",
                    perturbation="numbers",
                    perturb_seed=1,
                )
            )
            rs.append(rec(f"p{i}~rename", role, True, parent_id=f"p{i}", perturbation="rename"))
    rs.append(rec("orphan~num", "student", False, parent_id="gone", perturbation="numbers"))
    return rs


def test_ood_groups_by_kind_with_paired_deltas():
    m = compute_metrics(_records(), {})
    ood = m["tasks"]["t"]["ood"]
    assert set(ood["kinds"]) == {"numbers", "rename"}
    num = ood["kinds"]["numbers"]
    assert num["student"]["delta"] == pytest.approx(-0.5)
    assert num["student"]["matched"] == 4 and num["student"]["unmatched"] == 1
    assert num["teacher"]["delta"] == 0.0
    assert num["student"]["pass_at_1"] == pytest.approx(2 / 5)
    assert ood["kinds"]["rename"]["student"]["delta"] == 0.0
    assert ood["originals"]["student"] == {"pass_at_1": 1.0, "problems": 4}
    assert num["paired"]["retention"] == pytest.approx(0.5)


def test_no_perturbations_no_ood_section():
    assert "ood" not in compute_metrics([rec("a", "student")], {})["tasks"]["t"]
