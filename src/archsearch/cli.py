"""``archsearch``: a thin command line over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from archsearch import registry
from archsearch.config import Config, parse_config
from archsearch.errors import ArchsearchError, StorageError
from archsearch.objectives import Bound
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch, SQLiteStorage, open_record
from archsearch.terminal import COST_METRICS, cut, fitted_table, header, metric_text, number, room
from archsearch.trial import FrozenTrial, TrialState, best_of, pareto_front_of
from archsearch.version import __version__

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsearch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) the search a YAML config describes")
    run.add_argument("config", type=Path)
    run.add_argument("--storage", help="SQLite file for the record (default: the config's)")
    run.add_argument("--trials", type=int, help="trial budget for the whole study")
    run.add_argument("--seed", type=int, help="the seed everything derives from")
    run.add_argument("--timeout", type=float, help="wall-time budget of this run, in seconds")
    run.add_argument("--executor", choices=["serial", "processes", "ray"],
                     help="where trials run (default: the config's, else serial)")
    run.add_argument("--workers", type=int,
                     help="trials in flight (1: serial; more: processes, or ray's workers)")

    listing = sub.add_parser("list", help="the spaces, strategies, estimators, executors and "
                                          "schedulers a config may name, with their settings")
    listing.add_argument("kind", nargs="?", choices=["spaces", "strategies", "estimators",
                                                     "executors", "schedulers"],
                         help="one kind only (default: all five)")

    show = sub.add_parser("show", help="the trials of a study and its best architecture")
    show.add_argument("storage", type=Path)
    show.add_argument("--study", help="study name (default: the only one stored)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--top", type=int, default=0, help="show only the best N trials")
    show.add_argument("--front", action="store_true",
                      help="show only the Pareto front (the best trial for one objective)"),

    export = sub.add_parser("export", help="write the best architecture, weights and metrics")
    export.add_argument("storage", type=Path)
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--study", help="study name (default: the only one stored)")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this trial instead of the best")
    which.add_argument("--front", action="store_true",
                       help="export every trial of the Pareto front, each into OUT/trial-N")
    export.add_argument(
        "--format", action="append", metavar="FORMAT",
        help="state_dict (model.pt, the default), onnx (model.onnx, checked in ONNX Runtime) "
             "or pt2 (model.pt2, torch.export); repeat it or separate by commas",
    )
    export.add_argument(
        "--retrain-full", action="store_true",
        help="retrain on train+validation before export (default: retrain exactly as the "
             "trial was trained, which reproduces its weights)",
    )

    report = sub.add_parser("report", help="a self-contained HTML page of a study or of an "
                                           "`archsearch bench` output folder")
    report.add_argument("path", type=Path, help="a study's .db, or a bench output folder")
    report.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    report.add_argument("--study", help="study name (default: the only one stored)")

    bench = sub.add_parser("bench", help="compare strategies on a NAS benchmark table")
    bench.add_argument("--space", required=True, help="nb201 or nbgraph:<dataset>")
    bench.add_argument("--strategies", required=True,
                       help="comma-separated strategies: name or name[key=value, ...]")
    bench.add_argument("--budget", type=int, default=100, help="queries per run")
    bench.add_argument("--seeds", type=int, default=10, help="runs per strategy")
    bench.add_argument("--first-seed", type=int, default=0,
                       help="seeds run from this one (tune on other seeds than you report)")
    bench.add_argument("--workers", type=int, help="processes (default: one per core)")
    bench.add_argument("--metric", help="the table's search metric (e.g. nb201's noisy accuracy)")
    bench.add_argument("--objectives",
                       help="several objectives, e.g. val_accuracy:max,flops:min: judged by "
                            "hypervolume regret")
    bench.add_argument("--count-repeats", action="store_true",
                       help="a repeated architecture spends a query (as in tools that do not dedupe)")
    bench.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "list": _list, "show": _show, "export": _export, "bench": _bench,
                "report": _report}
    try:
        return commands[args.command](args)
    except ArchsearchError as err:  # a problem with the input: one line; a bug: a traceback
        errors.print(f"[red]error:[/red] {escape(str(err))}", markup=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/yellow]: run the same command again to resume")
        return 130


# -- run ---------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from archsearch.api import prepare
    from archsearch.progress import StudyProgress

    overrides = {k: getattr(args, k) for k in
                 ("storage", "trials", "seed", "timeout", "executor", "workers")}
    with console.status("loading data and building the search") as status:
        def on_decode(done: int, total: int) -> None:
            status.update(f"decoding images {done:,}/{total:,}")
        prepared = prepare(args.config, progress=on_decode, **overrides)
    config, budget = prepared.config, prepared.budget
    with prepared.study as study:
        console.print(f"study [bold]{study.name}[/bold] in {config.study.storage}: "
                      f"{study.space.describe()}, strategy {config.strategy.name}, "
                      f"objective {study.objective}")
        if study.n_evaluated:
            running = sum(1 for t in study.trials if not t.finished)
            console.print(f"resuming: {study.n_evaluated} trials finished, {running} to rerun")
        with StudyProgress(console, study, budget) as progress:
            reason = study.optimize(
                budget=budget, callbacks=[progress.on_trial], executor=prepared.executor,
                max_retries=config.study.max_retries,
                log=lambda line: progress.print(line))
        console.print(f"stopped: {reason.value}")
        fmt = _Formats(study.space)
        goals = [o.metric for o in study.objectives]
        if study.multi_objective:
            _print_front(study.pareto_front(), goals, fmt)
        else:
            _print_best(study.best_trial, goals, fmt)
    return 0


def _print_front(front: list[FrozenTrial], metrics: list[str], fmt: _Formats) -> None:
    if not front:
        console.print("no feasible trial completed")
        return
    console.print(f"Pareto front: {len(front)} trials (archsearch export --trial N, or --front "
                  "for all)")
    ordered = sorted(front, key=lambda t: t.values or ())
    headers = ["#", *[header(m) for m in metrics]]
    rows = [[str(t.number), *[_fmt(v) for v in t.values or ()]] for t in ordered]
    archs = fmt.column([t.genotype for t in ordered], room(headers, rows, console.width))
    console.print(fitted_table([*headers, "architecture"],
                               [[*row, arch] for row, arch in zip(rows, archs, strict=True)],
                               console.width))


def _list(args: argparse.Namespace) -> int:
    kinds = {"spaces": "space", "strategies": "strategy", "estimators": "estimator",
             "executors": "executor", "schedulers": "scheduler"}
    chosen = [args.kind] if args.kind else list(kinds)
    for plural in chosen:
        kind = kinds[plural]
        table = Table(title=f"{plural} (entry-point group {registry.GROUPS[kind]})",
                      title_justify="left")
        for column in ("name", "settings (default)", "class"):
            table.add_column(column, overflow="fold")
        for name, path in registry.available(kind).items():
            shown = name
            try:
                target = registry.resolve(kind, name)
                described = ", ".join(f"{key}={default}" for key, _, default
                                      in registry.settings(target)) or "-"
                argument = getattr(target, "name_argument", None)
                shown = f"{name}[:<{argument}>]" if argument else name  # optuna:tpe
            except ArchsearchError as err:  # e.g. an optional package is missing
                described = f"[dim]unavailable: {err}[/dim]"
            table.add_row(shown, described, path)
        console.print(table)
    return 0


def _print_best(best: FrozenTrial | None, goals: Sequence[str], fmt: _Formats) -> None:
    """The best trial in two lines: its architecture (compact where the full form is too
    wide), then its objective, test and cost metrics (``show --json`` has all)."""
    if best is None:
        console.print("no trial completed")
        return
    lead = f"best trial {best.number}: "
    console.print(lead + fmt.line(best.genotype, console.width - len(lead)), soft_wrap=True,
                  markup=False)
    shown = [m for m in goals if m in best.metrics]
    shown += [m for m in (*_test_metrics([best], goals), *_cost_metrics([best], goals))
              if m not in shown]
    parts = [f"{header(m)} {_fmt(best.metrics[m]) if m in goals else metric_text(m, best.metrics[m])}"
             for m in shown]
    console.print("  " + "  ".join(parts))


_fmt = number  # the objectives' numbers: 4 significant digits


class _Formats:
    """A space's architecture texts for the terminal: the full ``format`` where it fits,
    else ``format_compact``; any genotype the space cannot read as its JSON."""

    def __init__(self, space: Any) -> None:
        self.space = space

    def full(self, genotype: Genotype) -> str:
        return self._text(genotype, "format")

    def compact(self, genotype: Genotype) -> str:
        return self._text(genotype, "format_compact")

    def _text(self, genotype: Genotype, method: str) -> str:
        render = getattr(self.space, method, None) or getattr(self.space, "format", None)
        if render is not None:
            try:
                return str(render(genotype))
            except (ArchsearchError, ValueError, KeyError, TypeError):
                pass  # e.g. a space built without the data's modality
        return genotype.to_json()

    def line(self, genotype: Genotype, width: int) -> str:
        full = self.full(genotype)
        return full if cell_len(full) <= width else cut(self.compact(genotype), width)

    def column(self, genotypes: Sequence[Genotype], width: int) -> list[str]:
        """One form for a whole column ``width`` wide: full if every one fits, else
        compact (the table cuts what is still too long)."""
        full = [self.full(g) for g in genotypes]
        if all(cell_len(text) <= width for text in full):
            return full
        return [self.compact(g) for g in genotypes]


# -- show and export ---------------------------------------------------------------------
def _stored_config(storage: SQLiteStorage, study: str) -> Config | None:
    """The config a study was run from; None for a study made in Python (create_study)."""
    full = storage.load_study(study).config.get("full")
    return None if full is None else parse_config(full)


def _space_formatter(config: Config | None) -> _Formats:
    from archsearch.build import component

    if config is None:  # a study made in Python: its space may be any object
        return _Formats(None)
    try:
        space = component("space", config.space)
    except ArchsearchError:  # e.g. a space of a package not installed here: raw JSON
        return _Formats(None)
    return _Formats(space)


def _show(args: argparse.Namespace) -> int:
    storage, name, _ = open_record(args.storage, args.study)
    info = storage.load_study(name)
    trials = storage.trials(name)
    best = None if info.multi_objective else best_of(trials)
    front = {t.number for t in pareto_front_of(trials)}
    if args.json:
        print(json.dumps({
            "study": name, "seed": info.seed, "objective": info.objective,
            "direction": info.direction, "version": info.version,
            "objectives": [o.to_dict() for o in info.objectives],
            "constraints": {b.metric: b.to_dict() for b in info.constraints},
            "best_trial": None if best is None else best.number,
            "pareto_front": sorted(front),
            "trials": [_trial_json(t) for t in trials],
            "oneshot_epochs": [
                {"epoch": e.epoch, "metrics": dict(e.metrics), "arch_weights": dict(e.arch_weights),
                 "genotype": dict(e.genotype)} for e in storage.oneshot_epochs(name)],
        }, indent=2))
        return 0
    fmt = _space_formatter(_stored_config(storage, name))
    shown = trials
    if args.front:
        shown = [t for t in trials if t.number in front]
    elif args.top and not info.multi_objective:
        shown = sorted((t for t in trials if t.score is not None),
                       key=lambda t: -(t.score or 0.0))[: args.top]
    goals = [o.metric for o in info.objectives]
    extra = [*_test_metrics(shown, goals), *_cost_metrics(shown, goals)]
    console.print(f"study {name}: {len(trials)} trials, "
                  + ("objectives " if len(goals) > 1 else "objective ")
                  + ", ".join(f"{o.metric} ({o.direction[:3]})" for o in info.objectives)
                  + (", constraints " + ", ".join(_bound_text(b) for b in info.constraints)
                     if info.constraints else ""), markup=False)
    # Epochs and a sparkline per trial where a scheduler gave trials different epochs.
    curves = len({(t.epochs_trained, t.data_fraction) for t in shown if t.curve}) > 1
    curve_metric = info.objective if any(info.objective in p for t in shown for p in t.curve) \
        else "val_accuracy"
    headers = ["#", "state", *[header(m) for m in goals], *[header(m) for m in extra],
               *(["epochs"] if curves else [])]
    rows: list[list[str]] = []
    styles: list[str | None] = []
    for t in shown:
        marked = t.number in front and (info.multi_objective or t is best)
        rows.append([
            str(t.number), _state_text(t, marked, info.multi_objective),
            *([_fmt(v) for v in t.values] if t.values is not None else [""] * len(goals)),
            *[metric_text(m, t.metrics[m]) if m in t.metrics else "" for m in extra],
            *([_curve_text(t, curve_metric)] if curves else []),
        ])
        styles.append("bold green" if marked else None)
    archs = fmt.column([t.genotype for t in shown], room(headers, rows, console.width))
    cells: list[list[str | Text]] = []
    for t, row, arch in zip(shown, rows, archs, strict=True):
        text = Text(arch)
        if t.state is TrialState.FAILED and t.error:
            text.append("\n" + " ".join(t.error.split()), style="red")
        cells.append([*row, text])
    console.print(fitted_table([*headers, "architecture"], cells, console.width, styles=styles))
    _print_oneshot(storage.oneshot_epochs(name), fmt)
    if info.multi_objective:
        console.print(f"Pareto front: {len(front)} trials ({', '.join(map(str, sorted(front)))}); "
                      "`archsearch export --trial N` exports one, `--front` all of them")
    else:
        _print_best(best, goals, fmt)
        if best is not None and best.curve:
            console.print(f"learning curve of trial {best.number}: "
                          f"{_curve_text(best, curve_metric)} ({curve_metric} "
                          f"{_curve_span(best, curve_metric)})")
    return 0


def _state_text(t: FrozenTrial, marked: bool, multi_objective: bool) -> str:
    """One word: failed, pruned, running; a completed trial is best (or front), repeat
    (of an architecture evaluated before), infeasible (outside a constraint) or complete."""
    if t.state is not TrialState.COMPLETE:
        return t.state.value
    if not t.feasible:
        return "infeasible"
    if marked:
        return "front" if multi_objective else "best"
    return "repeat" if t.cached else "complete"


def _test_metrics(trials: Sequence[FrozenTrial], goals: Sequence[str]) -> list[str]:
    """The test metrics the trials recorded (at most two, ``test_accuracy`` first)."""
    names = {m for t in trials for m in t.metrics if m.startswith("test_") and m not in goals}
    return sorted(names, key=lambda m: (m != "test_accuracy", m))[:2]


def _cost_metrics(trials: Sequence[FrozenTrial], goals: Sequence[str]) -> list[str]:
    return [m for m in COST_METRICS if m not in goals and any(m in t.metrics for t in trials)]


def _curve_span(t: FrozenTrial, metric: str) -> str:
    values = [p[metric] for p in t.last_run if metric in p]
    return f"{_fmt(values[0])} to {_fmt(values[-1])}" if values else ""


def _bound_text(bound: Bound) -> str:
    low = "" if bound.min is None else f"{_fmt(bound.min)} <= "
    high = "" if bound.max is None else f" <= {_fmt(bound.max)}"
    return f"{low}{bound.metric}{high}"


def _print_oneshot(epochs: list[OneShotEpoch], fmt: _Formats) -> None:
    """A one-shot search's epochs: accuracies and the cell its weights derived each time
    (the architecture weights themselves are in ``show --json``)."""
    if not epochs:
        return
    console.print(f"one-shot search: {len(epochs)} epochs recorded (architecture weights per "
                  "epoch: show --json)")
    curvature = any("hessian_eigenvalue" in e.metrics for e in epochs)  # DARTS-ES
    headers = ["epoch", "train acc", "val acc", "seconds",
               *(["Hessian eigenvalue"] if curvature else [])]
    nan = float("nan")
    rows = [[str(e.epoch), f"{e.metrics.get('train_accuracy', nan):.4f}",
             f"{e.metrics.get('val_accuracy', nan):.4f}", f"{e.metrics.get('seconds', nan):.1f}",
             *([f"{e.metrics.get('hessian_eigenvalue', nan):.4g}"] if curvature else [])]
            for e in epochs]
    cells = fmt.column([e.genotype for e in epochs], room(headers, rows, console.width))
    console.print(fitted_table([*headers, "derived cell"],
                               [[*row, cell] for row, cell in zip(rows, cells, strict=True)],
                               console.width))


def _trial_json(t: FrozenTrial) -> dict[str, Any]:
    return {
        "number": t.number, "state": t.state.value, "genotype": dict(t.genotype), "key": t.key,
        "value": t.value, "values": None if t.values is None else list(t.values),
        "feasible": t.feasible, "metrics": dict(t.metrics), "error": t.error, "cached": t.cached,
        "started_at": t.started_at, "finished_at": t.finished_at,
        "curve": [dict(point) for point in t.curve],
    }


_BARS = "▁▂▃▄▅▆▇█"


def _curve_text(t: FrozenTrial, metric: str) -> str:
    """Epochs trained and a sparkline of ``metric`` at up to 8 epochs spread over the
    curve, first and last included (low to high: ▁ to █); of the last run only, headed by
    its share of the data, for a trial run on data fractions."""
    values = [p[metric] for p in t.last_run if metric in p]
    if not values:
        return ""
    if len(values) > 8:
        values = [values[round(i * (len(values) - 1) / 7)] for i in range(8)]
    low, high = min(values), max(values)
    span = high - low or 1.0
    bars = "".join(_BARS[round((v - low) / span * (len(_BARS) - 1))] for v in values)
    fraction = "" if t.data_fraction is None else f"{t.data_fraction:.3g}x "
    return f"{fraction}{t.epochs_trained} {bars}"


def _export(args: argparse.Namespace) -> int:
    from archsearch.export import export_trial
    from archsearch.export_formats import parse_formats, prepare_folder, require_extras

    formats = parse_formats(args.format)
    storage, name, _ = open_record(args.storage, args.study)
    trials = storage.trials(name)
    info = storage.load_study(name)
    if args.front:
        chosen = pareto_front_of(trials)
        if not chosen:
            raise StorageError(f"study {name!r} has no feasible completed trial: its Pareto "
                               "front is empty")
    elif args.trial is not None:
        chosen = [_exportable(trials, args.trial, name)]
    else:
        if info.multi_objective:
            front = ", ".join(str(t.number) for t in pareto_front_of(trials))
            raise StorageError(f"study {name!r} has several objectives, so no single best trial: "
                               f"choose one with --trial, or all of the Pareto front with --front "
                               f"(it is {front or 'empty'})")
        best = best_of(trials)
        if best is None:
            raise StorageError(f"study {name!r} has no completed trial to export")
        chosen = [best]
    config = _stored_config(storage, name)
    if config is None:
        raise StorageError(f"study {name!r} was made in Python (create_study), not from a config: "
                           "export rebuilds the estimator from the config; the genotype is in "
                           "`archsearch show --json`")
    require_extras(formats)
    prepare_folder(args.out)
    if not args.front:
        written = export_trial(config, info.seed, chosen[0], args.out, formats=formats,
                               retrain_full=args.retrain_full, console=console)
        console.print(f"exported trial {chosen[0].number} to {args.out}: {', '.join(written)}")
        return 0
    from archsearch.build import build_components, load_data

    components = build_components(config, load_data(config))
    members = []
    for t in chosen:
        folder = args.out / f"trial-{t.number}"
        written = export_trial(config, info.seed, t, folder, formats=formats,
                               retrain_full=args.retrain_full, console=console,
                               components=components)
        console.print(f"exported trial {t.number} to {folder}: {', '.join(written)}")
        members.append({"trial": t.number, "folder": folder.name,
                        "values": None if t.values is None else list(t.values)})
    (args.out / "front.json").write_text(json.dumps({
        "study": name, "objectives": [o.to_dict() for o in info.objectives],
        "formats": list(formats), "trials": members}, indent=2))
    console.print(f"exported the Pareto front ({len(members)} trials) to {args.out}; "
                  "front.json lists them")
    return 0


def _exportable(trials: Sequence[FrozenTrial], number: int, study: str) -> FrozenTrial:
    """Trial ``number`` if it completed, else a one-line ``StorageError`` saying why not."""
    trial = next((t for t in trials if t.number == number), None)
    if trial is None:
        span = f"0..{trials[-1].number}" if trials else "none yet"
        raise StorageError(f"study {study!r} has no trial {number} (its trials: {span})")
    if trial.state is not TrialState.COMPLETE:
        error = cut(" ".join((trial.error or "").split()), 200)
        why = {TrialState.FAILED: f"failed ({error})" if error else "failed",
               TrialState.PRUNED: "was pruned (stopped early)"}.get(trial.state,
                                                                   "has not finished")
        raise StorageError(f"trial {number} of {study!r} {why}: only a completed trial has a "
                           "network to export")
    return trial


def _bench(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from archsearch.bench import markdown_table, run_bench, split_strategies

    strategies = split_strategies(args.strategies)
    with Progress(MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("runs", total=len(strategies) * args.seeds)
        summary = run_bench(
            args.space, strategies, args.budget, args.seeds, args.out, workers=args.workers,
            first_seed=args.first_seed, metric=args.metric, count_repeats=args.count_repeats,
            objectives=args.objectives,
            progress=lambda done, total: bar.update(task, completed=done))
    if args.objectives:
        from archsearch.bench_pareto import markdown_pareto

        console.print(markdown_pareto(summary))
    else:
        console.print(markdown_table(summary))
    console.print(f"wrote runs.jsonl, summary.json, summary.md, regret.png to {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from archsearch.report import write_report  # the page's code loads only when asked

    summary = write_report(args.path, args.out, study=args.study)
    console.print(f"wrote {summary.out} ({summary.bytes} bytes, {summary.trials} trials)",
                  markup=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
