"""``archsearch``: a thin command line over the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from archsearch import registry
from archsearch.config import Config, parse_config
from archsearch.errors import ArchsearchError, StorageError
from archsearch.objectives import Bound
from archsearch.space.genotype import Genotype
from archsearch.storage import OneShotEpoch, SQLiteStorage
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
    export.add_argument("--trial", type=int, help="export this trial instead of the best")
    export.add_argument(
        "--retrain-full", action="store_true",
        help="retrain on train+validation before export (default: retrain exactly as the "
             "trial was trained, which reproduces its weights)",
    )

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
    commands = {"run": _run, "list": _list, "show": _show, "export": _export, "bench": _bench}
    try:
        return commands[args.command](args)
    except ArchsearchError as err:  # a problem with the input: one line; a bug: a traceback
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
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
        if study.multi_objective:
            _print_front(study.pareto_front(), [o.metric for o in study.objectives],
                         study.space.format)
        else:
            _print_best(study.best_trial, study.space.format)
    return 0


def _print_front(front: list[FrozenTrial], metrics: list[str], fmt: Any) -> None:
    if not front:
        console.print("no feasible trial completed")
        return
    table = Table(title=f"Pareto front: {len(front)} trials (archsearch export --trial N)")
    for column in ("#", *metrics, "architecture"):
        table.add_column(column, overflow="fold")
    for t in sorted(front, key=lambda t: t.values or ()):
        table.add_row(str(t.number), *[_fmt(v) for v in t.values or ()], fmt(t.genotype))
    console.print(table)


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


def _print_best(best: FrozenTrial | None, fmt: Any) -> None:
    if best is None:
        console.print("no trial completed")
        return
    metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(best.metrics.items()))
    console.print(f"best trial {best.number}: {fmt(best.genotype)}\n  {metrics}")


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.4g}"


# -- show and export ---------------------------------------------------------------------
def _open(path: Path, study: str | None) -> tuple[SQLiteStorage, str]:
    if not path.is_file():
        raise StorageError(f"{path} does not exist")
    storage = SQLiteStorage(path)
    names = storage.study_names()
    if study is None:
        if len(names) != 1:
            raise StorageError(f"{path} holds {len(names)} studies ({', '.join(names)}); "
                               "choose one with --study")
        study = names[0]
    elif study not in names:
        raise StorageError(f"{path} holds no study named {study!r}; it has {', '.join(names)}")
    return storage, study


def _stored_config(storage: SQLiteStorage, study: str) -> Config | None:
    """The config a study was run from; None for a study made in Python (create_study)."""
    full = storage.load_study(study).config.get("full")
    return None if full is None else parse_config(full)


def _space_formatter(config: Config | None) -> Any:
    from archsearch.build import component

    if config is None:  # a study made in Python: its space may be any object
        return lambda g: g.to_json()
    try:
        space = component("space", config.space)
    except ArchsearchError:  # e.g. a space of a package not installed here: raw JSON
        return lambda g: g.to_json()
    return space.format


def _show(args: argparse.Namespace) -> int:
    storage, name = _open(args.storage, args.study)
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
    extra = [m for m in ("test_accuracy", "params", "train_seconds") if m not in goals]
    title = (f"study {name} ({len(trials)} trials, objectives "
             + ", ".join(f"{o.metric} ({o.direction[:3]})" for o in info.objectives)
             + (", constraints " + ", ".join(_bound_text(b) for b in info.constraints)
                if info.constraints else "") + ")")
    table = Table(title=title)
    # Epochs and a sparkline per trial where a scheduler gave trials different epochs.
    curves = len({t.epochs_trained for t in shown if t.curve}) > 1
    curve_metric = info.objective if any(info.objective in p for t in shown for p in t.curve) \
        else "val_accuracy"
    for column in ("#", "state", *goals, *extra, *(["epochs"] if curves else []),
                   "architecture"):
        table.add_column(column, overflow="fold")
    for t in shown:
        marked = t.number in front and (info.multi_objective or t is best)
        state = t.state.value + (" (repeat)" if t.cached else "")
        if t.state is TrialState.COMPLETE and not t.feasible:
            state += " (infeasible)"
        elif marked and info.multi_objective:
            state += " (front)"
        table.add_row(
            str(t.number), state,
            *([_fmt(v) for v in t.values] if t.values is not None else [""] * len(goals)),
            *[_metric(t, m, _FORMATS[m]) for m in extra],
            *([_curve_text(t, curve_metric)] if curves else []),
            fmt(t.genotype) if t.state is not TrialState.FAILED else f"{fmt(t.genotype)}\n"
            f"[red]{t.error}[/red]",
            style="bold green" if marked else None,
        )
    console.print(table)
    _print_oneshot(storage.oneshot_epochs(name), fmt)
    if info.multi_objective:
        console.print(f"Pareto front: {len(front)} trials ({', '.join(map(str, sorted(front)))}); "
                      "`archsearch export --trial N` exports any of them")
    else:
        _print_best(best, fmt)
        if best is not None and best.curve:
            console.print(f"learning curve of trial {best.number}: "
                          f"{_curve_text(best, curve_metric)} ({curve_metric} "
                          f"{_curve_span(best, curve_metric)})")
    return 0


def _curve_span(t: FrozenTrial, metric: str) -> str:
    values = [p[metric] for p in t.curve if metric in p]
    return f"{_fmt(values[0])} to {_fmt(values[-1])}" if values else ""


_FORMATS = {"test_accuracy": "{:.4f}", "params": "{:,.0f}", "train_seconds": "{:.1f}"}


def _bound_text(bound: Bound) -> str:
    low = "" if bound.min is None else f"{_fmt(bound.min)} <= "
    high = "" if bound.max is None else f" <= {_fmt(bound.max)}"
    return f"{low}{bound.metric}{high}"


def _print_oneshot(epochs: list[OneShotEpoch], fmt: Callable[[Genotype], str]) -> None:
    """A one-shot search's epochs: accuracies and the cell its weights derived each time
    (the architecture weights themselves are in ``show --json``)."""
    if not epochs:
        return
    table = Table(title=f"one-shot search: {len(epochs)} epochs recorded "
                        "(architecture weights per epoch: show --json)")
    curvature = any("hessian_eigenvalue" in e.metrics for e in epochs)  # DARTS-ES
    for column in ("epoch", "train acc", "val acc", "seconds",
                   *(["Hessian eigenvalue"] if curvature else []), "derived cell"):
        table.add_column(column, overflow="fold")
    for e in epochs:
        eigenvalue = [f"{e.metrics.get('hessian_eigenvalue', float('nan')):.4g}"] if curvature else []
        table.add_row(str(e.epoch), f"{e.metrics.get('train_accuracy', float('nan')):.4f}",
                      f"{e.metrics.get('val_accuracy', float('nan')):.4f}",
                      f"{e.metrics.get('seconds', float('nan')):.1f}", *eigenvalue, fmt(e.genotype))
    console.print(table)


def _metric(trial: FrozenTrial, name: str, pattern: str) -> str:
    value = trial.metrics.get(name)
    return "" if value is None else pattern.format(value)


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
    curve, first and last included (low to high: ▁ to █)."""
    values = [p[metric] for p in t.curve if metric in p]
    if not values:
        return ""
    if len(values) > 8:
        values = [values[round(i * (len(values) - 1) / 7)] for i in range(8)]
    low, high = min(values), max(values)
    span = high - low or 1.0
    bars = "".join(_BARS[round((v - low) / span * (len(_BARS) - 1))] for v in values)
    return f"{t.epochs_trained} {bars}"


def _export(args: argparse.Namespace) -> int:
    from archsearch.export import export_trial

    storage, name = _open(args.storage, args.study)
    trials = storage.trials(name)
    if args.trial is not None:
        chosen = next((t for t in trials if t.number == args.trial), None)
        if chosen is None or chosen.state is not TrialState.COMPLETE:
            raise StorageError(f"trial {args.trial} is not a completed trial of {name!r}")
    else:
        if storage.load_study(name).multi_objective:
            front = ", ".join(str(t.number) for t in pareto_front_of(trials))
            raise StorageError(f"study {name!r} has several objectives, so no single best trial: "
                               f"choose one with --trial (the Pareto front: {front or 'empty'})")
        chosen = best_of(trials)
        if chosen is None:
            raise StorageError(f"study {name!r} has no completed trial to export")
    info = storage.load_study(name)
    config = _stored_config(storage, name)
    if config is None:
        raise StorageError(f"study {name!r} was made in Python (create_study), not from a config: "
                           "export rebuilds the estimator from the config; the genotype is in "
                           "`archsearch show --json`")
    written = export_trial(config, info.seed, chosen, args.out,
                           retrain_full=args.retrain_full, console=console)
    console.print(f"exported trial {chosen.number} to {args.out}: {', '.join(written)}")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
