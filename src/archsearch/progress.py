"""A rich progress bar for a running study: trial i of N, best so far, time left."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from archsearch.loop import Budget
from archsearch.study import Study
from archsearch.trial import FrozenTrial, TrialState


class StudyProgress:
    """Shows the study's progress and prints one line per finished trial."""

    def __init__(self, console: Console, study: Study, budget: Budget) -> None:
        self.console = console
        self.study = study
        self._progress = Progress(
            TextColumn("trial"), MofNCompleteColumn(), BarColumn(),
            TextColumn("best {task.fields[best]}"), TimeElapsedColumn(),
            TextColumn("left"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        total = budget.trials
        if study.strategy.runs_own_search and total is not None:
            total = min(total, 1)  # a one-shot search trains a supernet, then evaluates one cell
        self._task = self._progress.add_task(
            "search", total=total, completed=study.n_evaluated, best=self._best_text())

    def _best_text(self) -> str:
        if self.study.multi_objective:
            return f"front of {len(self.study.pareto_front())}"
        best = self.study.best_trial
        return "-" if best is None or best.value is None else f"{best.value:.4f}"

    def on_trial(self, study: Study, trial: FrozenTrial) -> None:
        if trial.error:
            status = f"[red]failed[/red] {trial.error}"
        else:
            extra = "".join(
                f"  {label} {trial.metrics[name]:{spec}}"
                for name, label, spec in (("test_accuracy", "test", ".4f"),
                                          ("params", "params", ",.0f"),
                                          ("train_seconds", "s", ".1f"))
                if name in trial.metrics)
            goals = "  ".join(f"{o.metric} {v:.4g}" for o, v in
                              zip(study.objectives, trial.values or (), strict=False))
            if trial.state is TrialState.PRUNED:  # no objective values: its last epoch's
                value = trial.metrics.get(study.objective)
                where = (f"epoch {trial.epochs_trained}" if trial.data_fraction is None
                         else f"{trial.data_fraction:.3g} of the data")
                goals = f"[dim]pruned at {where}[/dim]" + (
                    "" if value is None else f"  {study.objective} {value:.4g}")
            status = goals + extra + ("" if trial.feasible else "  [yellow]infeasible[/yellow]")
        if trial.cached:
            status += " (repeat, from the record)"
        self._progress.console.print(f"trial {trial.number:>4}  {status}")
        self._progress.update(self._task, completed=study.n_evaluated, best=self._best_text())

    def print(self, line: str) -> None:
        """A driver's progress line (a one-shot search's epochs), above the bar."""
        self._progress.console.print(line, markup=False, highlight=False)

    def __enter__(self) -> StudyProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()
