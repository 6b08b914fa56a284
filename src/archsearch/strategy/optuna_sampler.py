"""Any Optuna sampler as an archsearch strategy: ``optuna:tpe``, ``optuna:random``,
``optuna:nsga2``, ``optuna:gp`` (the optional extra ``archsearch[optuna]``).

Each decision of a ``DecisionSpace`` becomes ``suggest_categorical(name, choices)``,
asked in declaration order and only while the decision is active given the values
suggested so far, so conditional spaces are Optuna define-by-run spaces.  Optuna
maximises the archsearch ``score``.  A trial asked and not yet told is a ``RUNNING``
Optuna trial.  A failed trial is told as ``PRUNED``, not ``FAIL``: Optuna's samplers
ignore ``FAIL`` trials, so TPE would keep proposing an architecture that fails (its
unseen values look promising), while a pruned trial ranks below every completed one;
NSGA-II and the GP ignore both states alike.

The Optuna study lives in memory inside the strategy and is rebuilt from the record:
a trial told without having been asked by this object (the study replaying its record
on resume, or rerunning a trial that a crash interrupted) is re-created by asking Optuna
with its values fixed (``PartialFixedSampler``), which runs the sampler's own
bookkeeping (e.g. NSGA-II's generations) as the first time.  Every Optuna trial gets
a fresh sampler seeded from ``seed`` and the trial's position, so a resumed study
proposes exactly what an uninterrupted one would.  (The ``rng`` that the study passes
to ``ask`` is not used: a replayed ``tell`` has no such argument to reproduce it.)
Exact resumption assumes trials finish in the order they were asked (one at a time);
with several in flight, finish order is timing, and no strategy can replay that exactly.

Refused proposals: a space may refuse some combinations of its decisions' values (its
``validate`` adds a rule, as NAS-Bench-Graph's all-skip cell).  Such a proposal is told
``PRUNED`` and the sampler asked again; after 20 refusals in a row a random architecture
that the space accepts is proposed instead.  Refusals never reach the study's record, so
on such a space a replayed trial is first asked for freely: the sampler, in the state it
had the first time, repeats its refusals and then proposes the recorded trial.  This
costs one real ``ask`` per replayed trial, which is why it is done only for spaces that
override ``validate``.  An ``ask`` or ``tell`` cut short (Ctrl-C right after a refusal,
with the study and strategy then used again) leaves Optuna trials that no record holds,
as does a proposal that never reached the record; the next ``ask`` notices and rebuilds
the Optuna study from the record, as fresh objects resuming the study would.

Multi-objective studies: every sampler here handles several objectives itself (the
strategy is ``multi_objective``; ``optuna:gp`` needs Optuna >= 4.5 for that, and an
older Optuna is refused with a ConfigError at the first ask or tell).  The Optuna study
then has one "maximize" direction per score and is told each trial's score vector.  How
many objectives there are is read from the trials (the first finished one with scores):
the very first ask, before any trial finished, is made on a one-objective Optuna study,
and the first trial that shows more objectives makes the next ask rebuild the Optuna study
from the record, as fresh objects resuming the study would (so a resumed study is still
exact).  Constraints go to the sampler as Optuna constraints (``constraints_func``,
which TPE, NSGA-II and the GP honour; deprecated in Optuna 5 in favour of
``Trial.set_constraint``, which Optuna 4 lacks): a complete trial's constraint is its
``violation`` (0 when feasible), and a failed or refused one, told ``PRUNED``, gets an
infinite violation, so it ranks below every infeasible trial, as failed trials do in
archsearch's own NSGA-II.  A single-objective study is driven exactly as before: one
direction, the ``score`` told, infeasible and failed trials told ``PRUNED``, no
constraints.

Which samplers suit archsearch's categorical, conditional spaces:

* ``tpe`` (default): models every decision, conditional ones included (multivariate
  over the decisions present in every trial, univariate for the rest: Optuna's defaults).
* ``random``: uniform over the active decisions; a baseline that goes through Optuna.
* ``nsga2``: genetic algorithm (on one objective, an elitist GA).  Its first
  generation (``population_size``: ``n_startup_trials``, else Optuna's default 50) is
  random; crossover covers the decisions present in every trial, the others are
  sampled at random.
* ``gp``: Gaussian process with a categorical kernel over the decisions present in
  every trial; conditional decisions fall back to random sampling, so on a conditional
  space it models little beyond the depth and first layer, and can get stuck repeating
  a small network.  It fits a GP per ask (~0.3 s; needs torch and scipy).  Suits spaces
  without conditions (e.g. ``nb201``).
* ``cmaes``: refused with a ValueError: CMA-ES searches numeric parameters only, so on
  categorical decisions Optuna would sample every one of them at random.

Repeats: a model-based sampler may propose an architecture already evaluated; the study
answers it from its record (not counted in the budget) and tells it here with the
recorded score, as a trial of its own.  Once a sampler has converged it mostly repeats,
and every repeat is one more Optuna trial (asks slow down as they accumulate); the
study's ``max_repeats`` stops a sampler that only repeats.  The strategy returns None
once every architecture of the space has been tried.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import numpy as np

from archsearch.errors import ConfigError, MissingExtra

try:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.exceptions import ExperimentalWarning
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial as OptunaTrial
    from optuna.trial import TrialState as OptunaState
except ImportError as _err:  # pragma: no cover - exercised only without the extra
    raise MissingExtra(  # an ImportError that the CLI reports as a plain message
        'the optuna:<sampler> strategies need Optuna: pip install "archsearch[optuna]"'
    ) from _err

from archsearch.space.base import DecisionSpace, InvalidGenotype, SearchSpace
from archsearch.space.genotype import Genotype, Value
from archsearch.strategy.base import Strategy, seen_keys
from archsearch.trial import FrozenTrial, TrialState

#: Sampler names that work on categorical (and conditional) decision spaces.
SAMPLERS = ("tpe", "random", "nsga2", "gp")

#: Optuna samplers that cannot search categorical decisions, and why.
UNSUPPORTED = {
    "cmaes": "CMA-ES searches numeric parameters only; on archsearch's categorical "
             "decisions Optuna would sample every decision at random (use optuna:random "
             "for that, or optuna:tpe / optuna:gp / optuna:nsga2 for a model-based search)",
}

#: Samplers that handle several objectives (with constraints) only from an Optuna version.
MULTI_OBJECTIVE_SINCE = {"gp": (4, 5)}


def _optuna_version() -> tuple[int, ...]:
    parts = []
    for part in optuna.__version__.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial


def check_sampler(sampler: str) -> None:
    """ValueError naming the problem unless ``sampler`` is usable here."""
    if sampler in UNSUPPORTED:
        raise ValueError(f"optuna:{sampler} is not supported: {UNSUPPORTED[sampler]}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown Optuna sampler {sampler!r}; choose from "
                         f"{', '.join('optuna:' + s for s in SAMPLERS)}")


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (PartialFixedSampler) for the duration."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


#: Invalid proposals in a row before a random architecture is proposed instead.
_MAX_INVALID = 20
#: Random architectures drawn, at most, to find one the space accepts.
_MAX_RANDOM = 1000


class _SeededPerTrial(BaseSampler):
    """One Optuna trial's sampler: ``draws``, fresh and seeded for this trial, does all
    the random sampling; ``structure``, one long-lived sampler of the same kind, only
    infers the relative search space, which draws nothing and is computed incrementally
    (recomputing it from scratch for every trial was most of a fresh sampler's cost)."""

    def __init__(self, structure: BaseSampler, draws: BaseSampler) -> None:
        self._structure, self._draws = structure, draws

    def infer_relative_search_space(
        self, study: optuna.Study, trial: OptunaTrial
    ) -> dict[str, BaseDistribution]:
        return self._structure.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: OptunaTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._draws.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: OptunaTrial, param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._draws.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: OptunaTrial) -> None:
        self._draws.before_trial(study, trial)

    def after_trial(
        self, study: optuna.Study, trial: OptunaTrial, state: OptunaState,
        values: Sequence[float] | None,
    ) -> None:
        self._draws.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._draws.reseed_rng()


class OptunaStrategy(Strategy):
    """Drive an Optuna sampler over a ``DecisionSpace`` through Optuna's ask/tell API.

    ``n_startup_trials``: random trials before the model is used (Optuna's default when
    None): TPE's and GP's ``n_startup_trials``, NSGA-II's ``population_size`` (its first
    generation is random); ``optuna:random`` has no startup phase and refuses it.
    """

    name = "optuna"
    multi_objective: ClassVar[bool] = True  # every sampler takes a score vector
    #: ``optuna:tpe`` in a config is this class with ``sampler="tpe"`` (see archsearch.registry).
    name_argument = "sampler"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        sampler: str = "tpe",
        n_startup_trials: int | None = None,
    ) -> None:
        super().__init__(space, seed)
        self.sampler = sampler
        self.n_startup_trials = n_startup_trials
        # Argument checks only (cheap, and a bad name should fail before any training).
        check_sampler(sampler)
        if not isinstance(space, DecisionSpace):
            raise TypeError(f"optuna:{sampler} needs a DecisionSpace (a declared list of "
                            f"decisions); got {type(space).__name__}")
        if n_startup_trials is not None:
            if sampler == "random":
                raise ValueError("optuna:random has no startup phase; drop n_startup_trials")
            low = 2 if sampler == "nsga2" else 0
            if n_startup_trials < low:
                raise ValueError(f"optuna:{sampler}: n_startup_trials must be >= {low}, "
                                 f"got {n_startup_trials}")
        # A space whose validate() adds rules to its decisions may refuse a proposal.
        self._may_refuse = type(space).validate is not DecisionSpace.validate
        # Set while an ask or a tell changes the Optuna study: still set afterwards, that
        # call was interrupted and left Optuna trials that no record holds.
        self._dirty = False
        self._reset()

    def _reset(self) -> None:
        """Forget the Optuna study: the state before the first ask or tell."""
        self._study: optuna.Study | None = None
        self._structure: BaseSampler | None = None  # see _SeededPerTrial
        self._n_created = 0  # Optuna trials created so far (their numbers are 0..n-1)
        self._optuna_number: dict[int, int] = {}  # archsearch trial number -> Optuna's
        self._asked: dict[str, list[int]] = {}  # key -> Optuna trials asked, not yet bound
        self._finished: set[int] = set()  # Optuna trials already told
        # Directions of the Optuna study: one per score (None until it exists).
        self._objectives: int | None = None
        self._violations: dict[int, float] = {}  # Optuna trial -> constraint violation

    # -- Optuna plumbing -------------------------------------------------------------------
    def _optuna_study(self) -> optuna.Study:
        if self._study is None:
            self._objectives = self._objectives or 1
            if self._objectives == 1:
                self._study = optuna.create_study(
                    storage=optuna.storages.InMemoryStorage(), direction="maximize")
            else:
                self._check_multi_objective()
                self._study = optuna.create_study(
                    storage=optuna.storages.InMemoryStorage(),
                    directions=["maximize"] * self._objectives)
        return self._study

    @property
    def _multi(self) -> bool:
        return (self._objectives or 1) > 1

    def _check_multi_objective(self) -> None:
        since = MULTI_OBJECTIVE_SINCE.get(self.sampler)
        if since is not None and _optuna_version() < since:
            raise ConfigError(
                f"optuna:{self.sampler} cannot search a study with {self._objectives} "
                f"objectives and constraints with Optuna {optuna.__version__} (it needs "
                f"Optuna >= {'.'.join(map(str, since))}): upgrade Optuna, or use "
                "optuna:tpe or optuna:nsga2")

    def _constraint(self, trial: OptunaTrial) -> tuple[float]:
        """Optuna's constraint of a trial (feasible at <= 0): the archsearch trial's
        violation; infinite for a failed or refused one (told ``PRUNED``)."""
        return (self._violations.get(trial.number, math.inf),)

    @staticmethod
    def _objectives_of(trials: Sequence[FrozenTrial]) -> int | None:
        """How many scores the study's trials have (None while no trial has any)."""
        return next((len(t.scores) for t in trials if t.scores is not None), None)

    def _sampler_for(self, position: int) -> BaseSampler:
        """The sampler of the Optuna trial at ``position``: its draws are seeded from
        ``seed`` and the position alone, so a replay reproduces them."""
        if self._structure is None:
            self._structure = self._make_sampler(self.seed)
        seed = int(np.random.SeedSequence([self.seed, position]).generate_state(1)[0])
        return _SeededPerTrial(self._structure, self._make_sampler(seed))

    def _make_sampler(self, seed: int) -> BaseSampler:
        if self._multi:
            return self._make_multi_objective_sampler(seed)
        n = self.n_startup_trials
        if self.sampler == "tpe":
            if n is None:
                return optuna.samplers.TPESampler(seed=seed)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.sampler == "nsga2":
            if n is None:
                return optuna.samplers.NSGAIISampler(seed=seed)
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=n)
        if self.sampler == "gp":
            kwargs: dict[str, Any] = {} if n is None else {"n_startup_trials": n}
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False,
                                             **kwargs)
        raise AssertionError(self.sampler)  # check_sampler ran in __init__

    def _make_multi_objective_sampler(self, seed: int) -> BaseSampler:
        """The sampler for several objectives: the same settings, plus the constraints."""
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        kwargs: dict[str, Any] = {"seed": seed, "constraints_func": self._constraint}
        if self.n_startup_trials is not None:
            startup = "population_size" if self.sampler == "nsga2" else "n_startup_trials"
            kwargs[startup] = self.n_startup_trials
        with warnings.catch_warnings():  # constraints_func: deprecated in 5, experimental in 4
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", ExperimentalWarning)
            if self.sampler == "tpe":
                return optuna.samplers.TPESampler(**kwargs)
            if self.sampler == "nsga2":
                return optuna.samplers.NSGAIISampler(**kwargs)
            if self.sampler == "gp":
                return optuna.samplers.GPSampler(warn_independent_sampling=False, **kwargs)
        raise AssertionError(self.sampler)  # check_sampler ran in __init__

    def _new_trial(self, fixed: Mapping[str, Value] | None) -> tuple[optuna.Trial, Genotype]:
        """Ask Optuna for a trial and suggest every active decision, in declaration order;
        ``fixed`` gives the values of a trial that is being re-created."""
        study = self._optuna_study()
        sampler = self._sampler_for(self._n_created)
        if fixed is not None:
            sampler = optuna.samplers.PartialFixedSampler(dict(fixed), sampler)
        study.sampler = sampler
        trial = study.ask()
        self._n_created += 1
        assert isinstance(self.space, DecisionSpace)
        values: dict[str, Value] = {}
        for d in self.space.decisions:
            if d.is_active(values):
                # Optuna returns the choice object itself: bool, int and str round-trip.
                values[d.name] = cast(Value, trial.suggest_categorical(d.name, d.choices))
        return trial, Genotype.of(values)

    def _finish(self, number: int, trial: FrozenTrial) -> None:
        """Tell Optuna's trial ``number`` the outcome of archsearch's ``trial``."""
        if number in self._finished:
            return
        study = self._optuna_study()
        if self._multi:
            if trial.state is TrialState.COMPLETE and trial.scores is not None:
                self._violations[number] = trial.violation  # read back by _constraint
                study.tell(number, list(trial.scores))
            else:  # failed: below every complete trial, infeasible ones included
                study.tell(number, state=OptunaState.PRUNED)
        elif trial.state is TrialState.COMPLETE and trial.score is not None:
            study.tell(number, trial.score)
        else:  # failed: ranked below every completed trial (see the module docstring)
            study.tell(number, state=OptunaState.PRUNED)
        self._finished.add(number)

    def _recreate(self, trial: FrozenTrial) -> int:
        """Add a trial this object did not ask (replayed or rerun); its Optuna number.

        On a space that refuses some proposals, the refusals in front of this trial are
        replayed first: they are in no record, but the sampler, in the state it had when
        it proposed this trial, proposes them again, so they are refused again, as the
        first time, and what it proposes next is this trial.  A different proposal means
        the record was not made one trial at a time; it is told ``FAIL`` (which samplers
        ignore) and the trial is added with its values fixed.
        """
        if self._may_refuse:
            for _ in range(_MAX_INVALID):
                with _quiet():
                    proposal, genotype = self._new_trial(None)
                if self._refused(proposal, genotype):
                    continue
                if self.space.key(genotype) == trial.key:
                    self._optuna_number[trial.number] = proposal.number
                    return proposal.number
                self._optuna_study().tell(proposal.number, state=OptunaState.FAIL)
                break
        number = self._add_fixed(trial.genotype)
        self._optuna_number[trial.number] = number
        return number

    def _add_fixed(self, genotype: Genotype) -> int:
        """Ask Optuna for a trial with ``genotype``'s values fixed; its number."""
        assert isinstance(self.space, DecisionSpace)
        with _quiet():
            created, _ = self._new_trial(self.space.active_values(genotype))
        return created.number

    def _refused(self, proposal: optuna.Trial, genotype: Genotype) -> bool:
        """Whether the space refuses ``genotype`` by a rule outside its decisions
        (NAS-Bench-Graph has no all-skip cell); a refused proposal is told ``PRUNED``,
        ranking it below every result, so the sampler moves away from it."""
        try:
            self.space.validate(genotype)
        except InvalidGenotype:
            with _quiet():
                self._optuna_study().tell(proposal.number, state=OptunaState.PRUNED)
            return True
        return False

    def _bind(self, trial: FrozenTrial) -> int | None:
        """The Optuna trial behind archsearch's ``trial`` if this object asked for it."""
        number = self._optuna_number.get(trial.number)
        if number is None:
            waiting = self._asked.get(trial.key)
            if waiting:
                number = waiting.pop(0)
                self._optuna_number[trial.number] = number
        return number

    # -- the strategy interface ----------------------------------------------------------
    def _drifted(self, trials: Sequence[FrozenTrial]) -> bool:
        """Whether the Optuna study holds more than ``trials`` (the record) gives: an ask or
        a tell was interrupted (Ctrl-C right after a refusal, say), or a proposal never
        reached the record; its Optuna trials and refusals would steer every later ask."""
        if self._dirty:
            return True
        objectives = self._objectives_of(trials)
        if self._study is not None and objectives not in (None, self._objectives):
            return True  # the record has more objectives than the Optuna study
        unbound = {key: len(numbers) for key, numbers in self._asked.items() if numbers}
        for t in trials:
            number = self._optuna_number.get(t.number)
            if number is None and unbound.get(t.key):
                unbound[t.key] -= 1  # what _bind will pair with this trial
            elif number is not None and t.finished and number not in self._finished:
                return True  # finished in the record, never told here
        return any(unbound.values())

    def _rebuild(self, trials: Sequence[FrozenTrial]) -> None:
        """Rebuild the Optuna study from the record alone, as a study resumed by fresh
        objects does: the finished trials replayed in the order they finished (each with
        the refusals in front of it), the running ones re-created by ``ask``."""
        self._reset()
        self._objectives = self._objectives_of(trials)
        finished = sorted((t for t in trials if t.finished),
                          key=lambda t: (t.finish_order or 0, t.number))
        for t in finished:
            self._finish(self._recreate(t), t)

    def ask(self, trials: Sequence[FrozenTrial], rng: np.random.Generator) -> Genotype | None:
        seen = seen_keys(trials)
        if len(seen) >= self.space.size():
            return None  # every architecture tried: Optuna would only repeat
        drifted = self._drifted(trials)
        self._dirty = True  # until this ask returns (a rebuild cut short is redone)
        if drifted:
            self._rebuild(trials)
        elif self._study is None:
            self._objectives = self._objectives_of(trials)
        # Trials the study knows and Optuna does not (pending after a resume): add them,
        # so the sampler sees what is running, as in an uninterrupted run.
        for t in sorted(trials, key=lambda t: t.number):
            if self._bind(t) is None:
                number = self._recreate(t)
                if t.finished:
                    self._finish(number, t)
        genotype = self._propose(rng)
        self._dirty = False
        return genotype

    def _propose(self, rng: np.random.Generator) -> Genotype:
        for _ in range(_MAX_INVALID):
            with _quiet():
                proposal, genotype = self._new_trial(None)
            if not self._refused(proposal, genotype):
                self._asked.setdefault(self.space.key(genotype), []).append(proposal.number)
                return genotype
        # Optuna keeps proposing refused cells: a random architecture, added to Optuna now
        # (where a replay, after the same refusals, adds it too).
        genotype = self._random_valid(rng)
        self._asked.setdefault(self.space.key(genotype), []).append(self._add_fixed(genotype))
        return genotype

    def _random_valid(self, rng: np.random.Generator) -> Genotype:
        """A random architecture the space accepts (its ``sample`` may ignore its rules)."""
        for _ in range(_MAX_RANDOM):
            genotype = self.space.sample(rng)
            try:
                self.space.validate(genotype)
            except InvalidGenotype:
                continue
            return genotype
        raise RuntimeError(
            f"the {self.space.name} space refused {_MAX_INVALID} proposals of "
            f"optuna:{self.sampler} and {_MAX_RANDOM} random architectures in a row: "
            f"its rules leave almost nothing to search")

    def tell(self, trial: FrozenTrial) -> None:
        if not trial.finished:
            return
        if trial.scores is not None:
            if self._study is None:
                self._objectives = len(trial.scores)
            elif len(trial.scores) != self._objectives:
                # The first trial that shows the study's objectives (an ask before it made
                # a one-objective Optuna study): the next ask rebuilds from the record.
                self._dirty = True
                return
        dirty, self._dirty = self._dirty, True
        number = self._bind(trial)
        if number is None:
            number = self._recreate(trial)
        self._finish(number, trial)
        self._dirty = dirty  # an earlier interruption still calls for a rebuild
