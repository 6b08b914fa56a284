"""The trials table of a study report, and what a click on a trial shows beyond it.

Rows are lists (column names once, not per row), and the architecture column holds an
index into the page's architecture catalogue, so 10,000 rows stay a few hundred KB."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from archsearch.objectives import Objective
from archsearch.report.archs import ArchCatalog
from archsearch.report.numbers import rounded
from archsearch.report.study_figures import COST_METRICS, objective_value
from archsearch.trial import FrozenTrial, TrialState

#: Metrics shown as columns after the objectives, where recorded.
MAIN_METRICS = ("test_accuracy", *COST_METRICS)

#: Every metric of every trial goes into the page (for a click on a trial) only while the
#: numbers stay under this count; past it (a 10,000-trial table study records 30 metrics a
#: trial) a click shows the table's columns and ``archsearch show --json`` has the rest.
MAX_DETAIL_NUMBERS = 200_000

#: A failed trial's error is cut to this many characters in the page.
MAX_ERROR = 400


def state_text(trial: FrozenTrial, highlighted: Collection[int], multi: bool) -> str:
    text = trial.state.value
    if trial.cached:
        text += " (repeat)"
    if trial.state is TrialState.COMPLETE and not trial.feasible:
        text += " (infeasible)"
    elif trial.number in highlighted:
        text += " (front)" if multi else " (best)"
    return text


def trials_table(trials: Sequence[FrozenTrial], objectives: Sequence[Objective],
                 catalog: ArchCatalog, highlighted: Collection[int]) -> dict[str, Any]:
    """``{"columns": [{"name", "type"}], "rows": [[...]]}``, one row per trial by number;
    column types ``num``, ``text`` and ``arch`` (an index into the catalogue)."""
    goals = [o.metric for o in objectives]
    recorded = {m for t in trials for m in t.metrics}
    extra = [m for m in MAIN_METRICS if m in recorded and m not in goals]
    curves = any(t.curve for t in trials)
    columns = [("#", "num"), ("state", "text"), *((g, "num") for g in goals),
               *((m, "num") for m in extra), *([("epochs", "num")] if curves else []),
               ("seconds", "num"), ("architecture", "arch")]
    multi = len(objectives) > 1
    rows = []
    for t in trials:
        rows.append([
            t.number, state_text(t, highlighted, multi),
            *(rounded(objective_value(t, k, o)) for k, o in enumerate(objectives)),
            *(rounded(t.metrics.get(m)) for m in extra),
            *([t.epochs_trained if t.curve else None] if curves else []),
            rounded(t.duration, 4), catalog.add(t.genotype, t.key)])
    return {"columns": [{"name": n, "type": kind} for n, kind in columns], "rows": rows}


def trial_details(trials: Sequence[FrozenTrial], table: dict[str, Any]) -> dict[str, Any]:
    """What a click on a trial shows beyond its row: the metrics that are not columns of
    ``table`` (while the page can afford them, see ``MAX_DETAIL_NUMBERS``) and a failed
    trial's error."""
    columns = {c["name"] for c in table["columns"]}
    names = sorted({m for t in trials for m in t.metrics} - columns)
    errors = {str(t.number): (t.error or "")[:MAX_ERROR] for t in trials
              if t.state is TrialState.FAILED}
    if len(names) * len(trials) > MAX_DETAIL_NUMBERS:
        return {"metrics": [], "values": [], "errors": errors,
                "note": f"{len(names)} metrics per trial are left out of a page this size: "
                        "`archsearch show --json` lists them"}
    values = [[rounded(t.metrics.get(m)) for m in names] for t in trials]
    return {"metrics": names, "values": values, "errors": errors, "note": ""}
