"""A study's report page: header, figures, drawings, trials table and configuration."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from archsearch.objectives import Objective
from archsearch.report.archs import ArchCatalog
from archsearch.report.numbers import formatted, seconds_text
from archsearch.report.page import Page, Section
from archsearch.report.study_data import StudyRecord
from archsearch.report.study_figures import (
    best_curve_figure,
    cost_scatter_figure,
    objective_value,
)
from archsearch.report.study_table import MAIN_METRICS, trial_details, trials_table
from archsearch.report.training_figures import learning_curves_figure, oneshot_weights_figure
from archsearch.trial import FrozenTrial, TrialState, best_of, pareto_front_of

#: Architectures drawn on the page without a click: the best few of a single objective,
#: the Pareto front (up to a number a reader still compares) of several.
TOP_DRAWN = 3
FRONT_DRAWN = 8


def study_page(record: StudyRecord) -> Page:
    info, trials = record.info, record.trials
    objectives = info.objectives
    multi = info.multi_objective
    best = None if multi else best_of(trials)
    front = pareto_front_of(trials) if multi else []
    highlighted = {t.number for t in front} if multi else ({best.number} if best else set())
    catalog = ArchCatalog(record.space)
    table = trials_table(trials, objectives, catalog, highlighted)
    drawn = _drawn(trials, objectives, front if multi else _top(trials), catalog)
    curves, curves_note = learning_curves_figure(trials, objectives[0])
    figures = {
        "best-curve": best_curve_figure(trials, objectives, by_time=False),
        "best-curve-time": best_curve_figure(trials, objectives, by_time=True),
        "cost-scatter": cost_scatter_figure(trials, objectives, highlighted),
        "oneshot-weights": oneshot_weights_figure(record.epochs, record.space),
        "learning-curves": curves,
    }
    sections = [
        Section("best-curve", "Best so far, over trials",
                note="points: complete trials; marked apart: failed (on the curve, they have "
                     "no value), pruned, repeated and infeasible ones. Click a point for its "
                     "architecture.", empty="no finished trial yet"),
        Section("best-curve-time", "Best so far, over wall clock", empty="no finished trial yet"),
        Section("cost-scatter", "Objective against cost",
                note="Pareto front marked" if multi else "best trial marked",
                empty="no cost metric recorded (params, flops, latency) and a single objective"),
        Section("drawings", "Architectures", kind="drawings",
                note=("the Pareto front" if multi else f"the best {TOP_DRAWN}") +
                     "; click a table row or a plot point to draw any trial's"),
    ]
    if record.epochs:
        sections.append(Section(
            "oneshot-weights", "One-shot search: architecture weights per edge over epochs",
            note="softmax of alpha; an edge a selection has decided is one-hot, a dropped one zero"))
    if curves is not None:
        sections.append(Section("learning-curves", "Learning curves", note=curves_note))
    sections += [Section("trials-table", "Trials", kind="table",
                         note="click a header to sort, a row to draw its architecture"),
                 Section("config", "Configuration", kind="config")]
    best_text, best_number, best_label = _best(trials, objectives, best, multi)
    return Page(
        title=f"study {info.name}", subtitle=str(record.path),
        facts=_facts(record, best, front), best_label=best_label, best_text=best_text,
        best_number=best_number, sections=sections, config_text=_config_text(record),
        trials=len(trials),
        data={"kind": "study", "figures": {k: v for k, v in figures.items() if v is not None},
              "table": table, "details": trial_details(trials, table), "drawn": drawn,
              "archs": catalog.payload()})


def _top(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    done = [t for t in trials if t.score is not None and not t.cached]
    return sorted(done, key=lambda t: (-(t.score or 0.0), t.number))[:TOP_DRAWN]


def _drawn(trials: Sequence[FrozenTrial], objectives: Sequence[Objective],
           chosen: Sequence[FrozenTrial], catalog: ArchCatalog) -> list[dict[str, Any]]:
    if len(objectives) > 1:  # the front by the first objective, best first
        sign = 1 if objectives[0].direction == "maximize" else -1
        chosen = sorted(chosen, key=lambda t: -sign * (objective_value(t, 0, objectives[0]) or 0))
        chosen = chosen[:FRONT_DRAWN]
    out = []
    for rank, t in enumerate(chosen):
        values = ", ".join(f"{o.metric} {formatted(objective_value(t, k, o))}"
                           for k, o in enumerate(objectives))
        label = "front" if len(objectives) > 1 else ("best" if rank == 0 else f"#{rank + 1}")
        out.append({"trial": t.number, "arch": catalog.add(t.genotype, t.key),
                    "caption": f"trial {t.number} ({label}): {values}"})
    return out


def _best(trials: Sequence[FrozenTrial], objectives: Sequence[Objective],
          best: FrozenTrial | None, multi: bool) -> tuple[str, float | None, str]:
    """``#best-value``'s text, number and label: the best trial's value, or with several
    objectives each objective's best over the feasible trials (no single trial has them)."""
    if not multi:
        if best is None:
            return "n/a", None, f"best {objectives[0].metric}"
        return formatted(best.value), best.value, f"best {objectives[0].metric}"
    feasible = [t for t in trials if t.values is not None and t.feasible and not t.cached]
    bests = []
    for k, o in enumerate(objectives):
        values = [t.values[k] for t in feasible if t.values is not None]
        bests.append((max if o.direction == "maximize" else min)(values) if values else None)
    text = ", ".join(formatted(b) for b in bests)
    return text, bests[0], "best of each objective (" + ", ".join(o.metric for o in objectives) + ")"


def _facts(record: StudyRecord, best: FrozenTrial | None,
           front: Sequence[FrozenTrial]) -> list[tuple[str, str]]:
    info, trials, config = record.info, record.trials, record.config
    space = _component(config, "space")
    if not space or record.space is None:  # say where it came from, or why it is missing
        described = record.space.describe() if record.space is not None else "unknown"
        space = f"{space or described} ({record.space_source})"
    facts = [("space", space)]
    for part in ("strategy", "estimator", "scheduler"):
        text = _component(config, part)
        if text or part != "scheduler":
            facts.append((part, text or "not recorded (a study made in Python)"))
    facts.append(("objectives", ", ".join(f"{o.metric} ({o.direction})" for o in info.objectives)))
    if info.constraints:
        facts.append(("constraints", ", ".join(f"{b.metric} {b.to_dict()}" for b in info.constraints)))
    facts.append(("trials", _counts(trials)))
    starts = [t.started_at for t in trials if t.started_at is not None]
    ends = [t.finished_at for t in trials if t.finished_at is not None]
    if starts and ends:
        facts.append(("wall clock", seconds_text(max(ends) - min(starts))))
    if record.epochs:
        facts.append(("one-shot search", f"{len(record.epochs)} epochs recorded"))
    if info.multi_objective:
        facts.append(("Pareto front", f"{len(front)} trials: "
                      + ", ".join(f"#{t.number}" for t in front[:20])
                      + (" ..." if len(front) > 20 else "")))
    elif best is not None:
        shown = [m for m in (info.objective, *MAIN_METRICS, "epochs") if m in best.metrics]
        facts.append(("best trial", f"#{best.number}: " + ", ".join(
            f"{m} {formatted(best.metrics[m])}" for m in shown)))
    facts.append(("seed / version", f"{info.seed} / archsearch {info.version}"))
    return facts


def _counts(trials: Sequence[FrozenTrial]) -> str:
    """``1,234: 1,200 complete, 30 failed, 4 pruned; 17 repeats``."""
    states = Counter(t.state.value for t in trials)
    parts = [f"{states[s.value]:,} {s.value}" for s in TrialState if states[s.value]]
    repeats = sum(1 for t in trials if t.cached)
    infeasible = sum(1 for t in trials if t.state is TrialState.COMPLETE and not t.feasible)
    extra = [f"{n:,} {what}" for n, what in ((repeats, "repeats"), (infeasible, "infeasible")) if n]
    return f"{len(trials):,}: " + ", ".join(parts) + (f"; {', '.join(extra)}" if extra else "")


def _component(config: Mapping[str, Any] | None, part: str) -> str:
    """``name (key value, ...)`` of a config section, or "" without one."""
    if config is None or not isinstance(config.get(part), Mapping):
        return ""
    section = dict(config[part])
    name = section.pop("name", "?")
    return f"{name} ({', '.join(f'{k} {json.dumps(v)}' for k, v in section.items())})" \
        if section else str(name)


def _config_text(record: StudyRecord) -> str:
    info = record.info
    recorded: dict[str, Any] = {
        "study": info.name, "seed": info.seed, "version": info.version,
        "objectives": [o.to_dict() for o in info.objectives],
        "constraints": {b.metric: b.to_dict() for b in info.constraints}}
    if record.config is None:
        head = "# a study made in Python (create_study): no config recorded, only these\n"
        return head + yaml.safe_dump(recorded, sort_keys=False)
    return yaml.safe_dump(dict(record.config), sort_keys=False)
