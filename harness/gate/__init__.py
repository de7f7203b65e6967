"""`harness gate`: a CI regression gate decided by paired statistics.

    harness gate --baseline RUN|baseline.json --candidate RUN|baseline.json [--runs DIR]
                 [--rules gate.yaml] [--alpha 0.05] [--junit FILE] [--markdown FILE]
    harness gate --save-baseline RUN --out baseline.json [--runs DIR]

Exit 0: every check passed; 1: a regression; 2: bad input (a missing run, a corrupted or
wrong-version baseline, an unreadable or invalid rules file). A candidate that lacks a task
the baseline has is a regression (exit 1), not bad input. The student side of each run is
gated; its original problems only (perturbed variants count through `max_ood_gap`).

Rules (YAML; `examples/gate.yaml`). Per task under `tasks:`, keyed by the task's spec as the
run names it (`chains:n=1`), its name (`chains`) or `"*"` (quoted: a bare * is YAML syntax);
a more specific key overrides the keys it sets. `null` turns a check off.

    key              default  unit      checks
    max_drop         2.0      points    accuracy drop against the baseline (paired test, below)
    min_accuracy     null     fraction  candidate accuracy >= it
    max_ece          null     fraction  candidate expected calibration error <= it
    max_truncation   null     fraction  candidate truncation rate (cut at the token limit) <= it
    max_ood_gap      null     points    per perturbation kind: original minus variant accuracy
                                        (paired on the variants' parents) <= it
    min_retention    null     fraction  candidate P(right | teacher right) >= it
    max_cause_share  {}       fraction  per failure label (capacity, mismatch, truncated, ...):
                                        its share of the labelled failures <= it
    missing          fail     -         a rule whose metric the candidate lacks (no ECE
                                        without a confidence source, no failures section
                                        without `harness classify`): fail, or skip

Top level: `alpha` (default 0.05; --alpha wins). Threshold rules check the candidate's own
value (the baseline's is shown beside it). An unknown key, a wrong type or an out-of-range
value is one line, exit 2.

The accuracy-drop decision. Let drop = baseline accuracy - candidate accuracy on the compared
items, and m = max_drop. A task FAILS when the test of H0: drop <= m rejects at alpha after
Holm's correction across the tasks tested, i.e. (before the correction) when the two-sided
(1 - alpha) interval of the drop lies wholly above m: the data show the drop exceeds the
allowance. One-sided that is a test at alpha / 2 (the non-inferiority convention), which is
what makes the interval in the table and the verdict say the same thing. A drop whose point
estimate exceeds m without that evidence is a `warn` (it passes, and says so).

- Shared problems (same task and problem id in both runs) are paired. With one graded sample
  per problem on each side: Tango's score test against the margin (McNemar's exact test when
  m = 0) and its score interval. With several: per problem, the mean correctness over its
  samples, and a percentile bootstrap over problems of the mean difference.
- No shared problems: unpaired, and said so: Newcombe's score interval for two independent
  proportions (one sample per problem), else a bootstrap of each side's problems.
- The p column is Holm-adjusted; messages give the raw p, McNemar's p of "no change at all"
  is kept for the paired binary case (`Check.p_change`).

Why this rule: a gate that fails on noise is soon ignored. Failing on "significant and the
point estimate above m" fails up to half the candidates whose true drop is exactly m;
failing only when the interval clears m keeps that rate near alpha / 2 for a candidate at
the allowance (and lower within it), and still fails a 5-point drop on 1000 paired items
with m = 2 when the runs mostly agree item by item (only discordant items carry variance).
The price is power where they disagree a lot: two independent samplings at temperature
differ on a third of the items, and a 5-point drop on 1000 items then fails about 40% of
the time (8 points: ~90%); four samples per problem (`--samples 4`) bring it to ~90%.

Outputs: a table (task x check: value, baseline, limit, delta, CI, p, verdict), `--junit`
(one testsuite, one testcase per task x check, a <failure> with the message for each
regression) and `--markdown` (the same table and messages, for a PR comment).
"""

from __future__ import annotations

from harness.gate.checks import VERDICTS, Check, GateResult, Verdict, drop_test, evaluate
from harness.gate.render import headline, junit, lines, markdown, table
from harness.gate.rules import DEFAULT_ALPHA, Rules, TaskRules, load_rules, parse_rules
from harness.gate.snapshot import (
    FORMAT,
    VERSION,
    Snapshot,
    TaskSnapshot,
    from_document,
    from_run,
    load_baseline,
    load_snapshot,
    save_baseline,
    to_document,
)

__all__ = [
    "DEFAULT_ALPHA",
    "FORMAT",
    "VERDICTS",
    "VERSION",
    "Check",
    "GateResult",
    "Rules",
    "Snapshot",
    "TaskRules",
    "TaskSnapshot",
    "Verdict",
    "drop_test",
    "evaluate",
    "from_document",
    "from_run",
    "headline",
    "junit",
    "lines",
    "load_baseline",
    "load_rules",
    "load_snapshot",
    "markdown",
    "parse_rules",
    "save_baseline",
    "table",
    "to_document",
]
