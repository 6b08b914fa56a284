"""Supernets and one-shot searches (DARTS, DARTS-, DARTS-PT, GDAS): forward and backward,
genotype derivation, perturbation-based selection, tiny searches, one-shot strategies run by
``Study.optimize`` (the derived cell an ordinary trial), and one-shot studies that survive
a kill -9 (through the Python API and the command line)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import archsearch
from archsearch.cli import main
from archsearch.data import Dataset, load_digits
from archsearch.errors import ConfigError
from archsearch.nn.supernet import (
    DartsSupernet,
    Mixture,
    NB201Supernet,
    Supernet,
    nb201_cell_from_weights,
)
from archsearch.oneshot import (
    DARTS,
    GDAS,
    BilevelSearch,
    DartsSearch,
    GdasSearch,
    OneShotDriver,
    auxiliary_skip_beta,
)
from archsearch.oneshot.data import prepare_search_data
from archsearch.oneshot.search import SupernetShape, SupernetTraining
from archsearch.oneshot.selection import decide_round, selection_scorer
from archsearch.space.cells import DartsSpace
from archsearch.space.chain import ChainSpace
from archsearch.space.nb201 import NB201_OPS, NB201Space
from archsearch.storage import InMemoryStorage, SQLiteStorage, StorageError
from archsearch.study import StopReason, Study

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _nb201(**kw: Any) -> NB201Supernet:
    torch.manual_seed(0)
    return NB201Supernet(channels=4, cells_per_stage=1, **kw)


def _darts(**kw: Any) -> DartsSupernet:
    torch.manual_seed(0)
    return DartsSupernet(channels=4, cells=3, steps=2, **kw)


def _batches(n: int = 3, size: int = 8, side: int = 8) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(size, 3, side, side, generator=g), torch.randint(0, 10, (size,), generator=g),
             torch.randn(size, 3, side, side, generator=g), torch.randint(0, 10, (size,), generator=g))
            for _ in range(n)]


# -- supernets ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_nb201, _darts], ids=["nb201", "darts"])
def test_supernet_forward_backward_and_parameter_split(make: Callable[[], Supernet]) -> None:
    net = make()
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert len(arch) + len(weights) == len(list(net.parameters()))
    out = net(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 10)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in arch)
    assert all(p.grad is not None for p in weights)
    # Cell BNs have no affine part in a supernet.
    cell_bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) and not m.affine]
    assert cell_bns


def test_sampled_mixture_computes_only_the_chosen_ops() -> None:
    net = _nb201()
    calls: list[str] = []
    for mixed in (m for m in net.modules() if type(m).__name__ == "MixedOp"):
        for name, op in zip(NB201_OPS, mixed.ops, strict=True):
            op.register_forward_hook(lambda *_, name=name: calls.append(name))
    chosen = (3, 3, 1, 0, 2, 4)
    weights = torch.nn.functional.one_hot(torch.tensor(chosen), 5).float()
    weights.requires_grad_(True)
    net(torch.randn(2, 3, 8, 8), {"cell": Mixture(weights, chosen)}).sum().backward()
    assert sorted(set(calls)) == sorted({NB201_OPS[k] for k in chosen})
    assert len(calls) == 6 * 3  # one op per edge, 3 cells
    assert weights.grad is not None and weights.grad[0].abs().sum() > 0


def test_nb201_derivation_on_hand_set_alphas() -> None:
    net = _nb201()
    with torch.no_grad():
        net.alpha.zero_()
        for edge, op in enumerate(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3",
                                   "nor_conv_1x1", "nor_conv_3x3")):
            net.alpha[edge, NB201_OPS.index(op)] = 1.0
        net.alpha[1, NB201_OPS.index("nor_conv_3x3")] = 0.5  # second to none on edge 2<-0
    space = NB201Space()
    assert space.to_string(net.derive()) == (
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    net.include_none = False  # NAS-Bench-201's scripts keep none; DARTS's rule drops it
    assert net.derive()["edge2<-0"] == "nor_conv_3x3"
    # The recorded weights (arch_weights) read the same cells as the supernet, either rule.
    recorded = net.arch_weights()["cell"]
    assert nb201_cell_from_weights(recorded, include_none=False) == net.derive()
    net.include_none = True
    assert nb201_cell_from_weights(recorded) == net.derive()
    with pytest.raises(ValueError, match="6 x 5"):
        nb201_cell_from_weights(recorded[:5])


def test_darts_derivation_keeps_the_top_two_edges_without_none() -> None:
    net = DartsSupernet(channels=4, cells=3, steps=4)
    ops = net.ops
    with torch.no_grad():
        for alpha in net.arch_parameters():
            alpha.zero_()
        a = net.alpha_normal
        # Node 2 (edges 0, 1): both kept; 'none' is strongest on edge 0 but never chosen.
        a[0, ops.index("none")] = 9.0
        a[0, ops.index("sep_conv_3x3")] = 2.0
        a[1, ops.index("skip_connect")] = 1.0
        # Node 3 (edges 2, 3, 4 read nodes 0, 1, 2): inputs 0 and 2 are strongest.
        a[2, ops.index("dil_conv_5x5")] = 3.0
        a[3, ops.index("none")] = 10.0
        a[4, ops.index("max_pool_3x3")] = 2.5
    cell = net.space.cell(net.derive(), "normal")
    assert cell[:4] == [("sep_conv_3x3", 0), ("skip_connect", 1),
                        ("dil_conv_5x5", 0), ("max_pool_3x3", 2)]
    assert all(op != "none" for op, _ in cell)


# -- the searches ---------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "search"), [
    (_nb201, lambda net: DARTS(net, epochs=2)),
    (_nb201, lambda net: DARTS(net, epochs=2, order=2)),
    (lambda: _nb201(auxiliary_skip=True), lambda net: DARTS(net, epochs=2, auxiliary_skip=True)),
    (lambda: _nb201(auxiliary_skip=True, auxiliary_op="skip_bn"),
     lambda net: DARTS(net, epochs=2, auxiliary_skip=True)),
    (_nb201, lambda net: GDAS(net, epochs=2)),
    (_darts, lambda net: DARTS(net, epochs=2)),
    (lambda: _darts(auxiliary_skip=True, auxiliary_op="skip_bn"),
     lambda net: DARTS(net, epochs=2, auxiliary_skip=True)),
    (_darts, lambda net: GDAS(net, epochs=2)),
], ids=["darts-nb201", "darts2-nb201", "darts-minus-nb201", "darts-minus-bn-nb201",
        "gdas-nb201", "darts-darts", "darts-minus-bn-darts", "gdas-darts"])
def test_tiny_searches_move_the_alphas_and_derive_valid_genotypes(
        make: Callable[[], Supernet], search: Callable[[Supernet], BilevelSearch]) -> None:
    net = make()
    before = [a.detach().clone() for a in net.arch_parameters()]
    method = search(net)
    for epoch in range(2):
        stats = method.train_epoch(epoch, _batches(), 3, torch.Generator().manual_seed(epoch))
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(net.arch_parameters(), before, strict=True))
    net.space.validate(net.derive())


def test_second_order_step_matches_the_exact_hypergradient() -> None:
    """DARTS's unrolled gradient with its finite-difference Hessian-vector product equals
    d/d alpha of L_val(w - xi * grad_w L_train(w, alpha), alpha), computed exactly."""
    from torch.func import functional_call

    net = _nb201().double()
    # ReLU kinks make DARTS's finite difference (radius 0.01) coarse on a tiny random net;
    # a small radius, in float64, checks the arithmetic.
    search = DARTS(net, epochs=1, order=2, weight_decay=0.0, hvp_radius=1e-6)
    x_train, y_train, x_val, y_val = (t.double() if t.is_floating_point() else t
                                      for t in _batches(1)[0])
    xi = search.w_optimizer.param_groups[0]["lr"]
    names = [n for n, p in net.named_parameters() if n != "alpha"]
    weights = [p for n, p in net.named_parameters() if n != "alpha"]

    def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(functional_call(net, params, (x,)), y)

    base = dict(net.named_parameters())
    grads = torch.autograd.grad(loss(base, x_train, y_train), weights, create_graph=True,
                                allow_unused=True)
    unrolled = {**base, **{n: w - xi * g for n, w, g in zip(names, weights, grads, strict=True)
                           if g is not None}}
    exact = torch.autograd.grad(loss(unrolled, x_val, y_val), net.alpha)[0]

    search._unrolled_backward(x_train, y_train, x_val, y_val)
    assert net.alpha.grad is not None
    torch.testing.assert_close(net.alpha.grad, exact, rtol=1e-3, atol=1e-6)


def test_darts_minus_skip_weight_decays_linearly() -> None:
    assert [auxiliary_skip_beta(e, 5) for e in range(5)] == [1.0, 0.8, 0.6, 0.4, 0.2]
    net = _nb201(auxiliary_skip=True)
    search = DARTS(net, epochs=4, auxiliary_skip=True)
    assert search.begin_epoch(2) == {"skip_beta": 0.5} and net.skip_beta == 0.5
    with pytest.raises(ValueError, match="auxiliary_skip"):
        DARTS(_nb201(), epochs=4, auxiliary_skip=True)


def _last_cell_spread(auxiliary_op: str) -> float:
    """The std of the last cell's output of a 15-cell NB201 supernet at beta = 1."""
    torch.manual_seed(0)
    net = NB201Supernet(channels=4, cells_per_stage=5, auxiliary_skip=True,
                        auxiliary_op=auxiliary_op)
    net.skip_beta = 1.0
    spreads: list[float] = []
    net.layers[-1].register_forward_hook(lambda m, i, out: spreads.append(out.std().item()))
    with torch.no_grad():
        net(torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0)))
    return spreads[0]


def test_normalised_auxiliary_skips_keep_the_activations_bounded() -> None:
    """Summed identities compound over NB201's chained cells (about 7x per cell); with an
    affine-free BN on each auxiliary skip the growth is additive."""
    assert _last_cell_spread("skip") > 1e8
    assert _last_cell_spread("skip_bn") < 50
    skip_bns = [e.skip for e in _nb201(auxiliary_skip=True, auxiliary_op="skip_bn").modules()
                if hasattr(e, "skip")]
    assert skip_bns and all(isinstance(m, torch.nn.BatchNorm2d) and not m.affine
                            for m in skip_bns)
    with pytest.raises(ValueError, match="auxiliary_op"):
        _nb201(auxiliary_skip=True, auxiliary_op="conv")
    with pytest.raises(ConfigError, match="auxiliary_op is for auxiliary_skip=True"):
        DartsSearch(NB201Space(4, 1), 0, auxiliary_op="skip_bn")  # without auxiliary_skip
    with pytest.raises(ConfigError, match="auxiliary_op must be one of"):
        DartsSearch(NB201Space(4, 1), 0, auxiliary_skip=True, auxiliary_op="conv")


def test_gdas_temperature_schedule_and_hard_samples() -> None:
    search = GDAS(_nb201(), epochs=5)
    assert [round(search.begin_epoch(e)["tau"], 3) for e in (0, 2, 4)] == [10.0, 5.05, 0.1]
    mixture = search.sample(torch.Generator().manual_seed(0))["cell"]
    assert mixture.chosen is not None and len(mixture.chosen) == 6
    torch.testing.assert_close(mixture.weights.detach(),
                               torch.nn.functional.one_hot(torch.tensor(mixture.chosen), 5).float())


def test_checkpoint_round_trips_through_weights_only_loading(tmp_path: Path) -> None:
    from archsearch.storage import OneShotEpoch, StudyInfo

    net = _nb201()
    search = DARTS(net, epochs=1)
    search.train_epoch(0, _batches(1), 1, torch.Generator())
    storage = SQLiteStorage(tmp_path / "s.db")
    storage.open_study(StudyInfo("s", 0, "maximize", "val_accuracy", {}, "0"))
    for epoch in (0, 1):
        storage.write_oneshot_epoch("s", OneShotEpoch(epoch, net.arch_weights(), {"x": 1.0},
                                                      net.derive()), search.state_dict())
    assert [p.name for p in (tmp_path / "s.db.oneshot" / "s").iterdir()] == ["epoch-00001.pt"]
    fresh = DARTS(_nb201(), epochs=1)
    fresh.load_state_dict(storage.load_oneshot_state("s", 1))
    torch.testing.assert_close(fresh.supernet.alpha, net.alpha)
    assert fresh.w_optimizer.state_dict()["state"].keys() == search.w_optimizer.state_dict()[
        "state"].keys()
    assert [e.epoch for e in storage.oneshot_epochs("s")] == [0, 1]


# -- in the study loop ----------------------------------------------------------------------

TINY = {"epochs": 3, "batch_size": 32, "max_images": 300}


def cells(genotype: Any) -> float:
    """A stand-in for the table: counts the cell's convolutions."""
    return float(sum("conv" in str(v) for v in genotype.values()))


def _study(storage: InMemoryStorage | SQLiteStorage | Path, method: str = "darts",
           **settings: Any) -> Study:
    return archsearch.create_study(NB201Space(channels=4, cells_per_stage=1), method, cells,
                                   storage=storage, name="oneshot", seed=2, data=load_digits(),
                                   strategy_params={**TINY, **settings})


def test_optimize_runs_a_one_shot_search_and_records_the_derived_cell(tmp_path: Path) -> None:
    """``strategy="darts"`` is a strategy like any other: ``optimize`` trains the supernet,
    then the study evaluates the one cell it derives (the old OneShotStrategy proposed
    nothing here and stopped "exhausted" with no trial)."""
    study = archsearch.create_study(NB201Space(channels=4, cells_per_stage=1), strategy="darts",
                                    estimator=cells, data=load_digits(),
                                    strategy_params={"epochs": 2, "batch_size": 32,
                                                     "max_images": 200},
                                    storage=tmp_path / "s.db", seed=0)
    with study:
        assert study.optimize() is StopReason.EXHAUSTED
    epochs = SQLiteStorage(tmp_path / "s.db").oneshot_epochs("study")
    assert [e.epoch for e in epochs] == [0, 1]
    (trial,) = study.trials
    assert trial.state.value == "complete" and trial.genotype == epochs[-1].genotype
    assert trial.value == cells(trial.genotype)
    # A Study built by hand with the strategy object runs the same way.
    space = NB201Space(channels=4, cells_per_stage=1)
    by_hand = Study(space, GdasSearch(space, epochs=1, batch_size=32, max_images=200), cells,
                    dataset=load_digits())
    assert isinstance(by_hand.strategy.driver(), OneShotDriver)
    by_hand.optimize()
    assert [t.state.value for t in by_hand.trials] == ["complete"]


@pytest.mark.parametrize("method", ["darts", "gdas"])
def test_one_shot_study_records_epochs_and_the_derived_trial(method: str) -> None:
    storage = InMemoryStorage()
    study = _study(storage, method)
    lines: list[str] = []
    study.optimize(log=lines.append)
    epochs = storage.oneshot_epochs("oneshot")
    assert [e.epoch for e in epochs] == [0, 1, 2] and len(lines) == 4
    assert len(epochs[0].arch_weights["cell"]) == 6
    assert [t.genotype for t in study.trials] == [epochs[-1].genotype]
    assert study.trials[0].state.value == "complete"
    # Running it again finds everything done.
    again = _study(storage, method)
    assert again.optimize(log=lines.append) is StopReason.EXHAUSTED
    assert len(storage.oneshot_epochs("oneshot")) == 3 and len(again.trials) == 1
    assert len(lines) == 4


def test_a_finished_search_is_evaluated_from_the_record(tmp_path: Path) -> None:
    """The cell ``ask`` proposes is read off the recorded epochs: a study that trained its
    supernet but evaluated nothing (here a trial budget of 0; or a kill between the last
    epoch and the trial) proposes the same cell in a fresh process, without training."""
    db = tmp_path / "r.db"
    with _study(db) as study:
        assert study.optimize(trials=0) is StopReason.BUDGET
        assert study.trials == [] and study.strategy.ask([], np.random.default_rng()) is not None
    lines: list[str] = []
    with _study(db) as study:
        study.optimize(log=lines.append)
    assert lines == []  # nothing trained
    epochs = SQLiteStorage(db).oneshot_epochs("oneshot")
    assert len(epochs) == 3 and [t.genotype for t in study.trials] == [epochs[-1].genotype]


def test_a_one_shot_study_needs_data_an_estimator_and_a_supernet_space() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    with pytest.raises(ConfigError, match="give the study data"):
        Study(space, DartsSearch(space, **TINY), cells).optimize()
    with pytest.raises(ConfigError, match="no estimator"):
        Study(space, DartsSearch(space, **TINY), dataset=load_digits()).optimize()
    with pytest.raises(ConfigError, match="ChainSpace"):
        archsearch.create_study(ChainSpace("vector"), "darts")
    with pytest.raises(ConfigError, match="ChainSpace"):
        GdasSearch(ChainSpace("vector"))


def test_settings_are_grouped_and_checked_at_construction() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    search = DartsSearch(space, epochs=20, warmup_epochs=5, auxiliary_skip=True,
                         auxiliary_op="skip_bn", channels=8, early_stop=True)
    assert search.training == SupernetTraining(epochs=20, warmup_epochs=5)
    assert search.shape == SupernetShape(channels=8)
    assert search.auxiliary_skip is not None and search.auxiliary_skip.op == "skip_bn"
    assert search.selection is None and search.eigenvalue is not None
    assert search.label == "darts-minus-es"
    # The record keeps the flat settings, as a config gives them.
    assert search.get_params()["auxiliary_op"] == "skip_bn"
    assert search.get_params()["epochs"] == 20
    for bad, message in [({"order": 3}, "order"), ({"epochs": 0}, "epochs"),
                         ({"warmup_epochs": 50}, "warmup_epochs"),
                         ({"train_portion": 1.0}, "train_portion"),
                         ({"lr_min": 1.0}, "lr_min"), ({"channels": 0}, "channels"),
                         ({"device": "gpu"}, "device"), ({"grad_clip": 0.0}, "grad_clip")]:
        with pytest.raises(ConfigError, match=message):
            DartsSearch(space, **bad)
    with pytest.raises(ConfigError, match="tau_min"):
        GdasSearch(space, tau_min=2.0, tau_max=1.0)
    # GDAS takes none of DARTS's own settings: a config naming one is refused, with the
    # accepted keys.
    with pytest.raises(ConfigError, match=r"unknown key 'order'; accepted: .*tau_max"):
        archsearch.create_study(space, "gdas", strategy_params={"order": 2})
    with pytest.raises(ConfigError, match="unknown key 'early_stop'"):
        archsearch.create_study(space, "gdas", strategy_params={"early_stop": True})
    with pytest.raises(ConfigError, match=r"strategy \(darts\).epochs: expected"):
        archsearch.create_study(space, "darts", strategy_params={"epochs": "many"})


def test_both_methods_share_the_supernet_settings_and_their_defaults() -> None:
    """DARTS and GDAS list the shared settings each (a config reads the signature); they
    must agree with each other and with the settings objects."""
    import inspect

    from archsearch.oneshot.data import SearchDataSettings

    darts = inspect.signature(DartsSearch).parameters
    gdas = inspect.signature(GdasSearch).parameters
    shared = {f.name: f.default for cls in (SupernetTraining, SearchDataSettings, SupernetShape)
              for f in dataclasses.fields(cls)}
    for name, default in shared.items():
        assert darts[name].default == gdas[name].default == default, name
    assert set(gdas) - set(darts) == {"tau_max", "tau_min"}


PERTURBATION = {"selection": "perturbation", "selection_interval": 1}
#: DARTS-ES with a rule that may fire after the second epoch (window 1, lag 1).
EARLY_STOP = {"early_stop": True, "early_stop_window": 1, "early_stop_lag": 1,
              "early_stop_start": 0, "early_stop_factor": 1.01}


@pytest.mark.parametrize(("settings", "stop_after"),
                         [({}, 1), (PERTURBATION, 4), (EARLY_STOP, 1)],
                         ids=["darts", "darts-pt", "darts-es"])
def test_interrupted_one_shot_study_resumes_exactly(tmp_path: Path, settings: dict[str, Any],
                                                    stop_after: int) -> None:
    # darts-pt: 3 supernet epochs, then 5 of fine-tuning; stopped after two decisions.
    straight = InMemoryStorage()
    _study(straight, **settings).optimize()
    storage = SQLiteStorage(tmp_path / "r.db")

    def interrupt(line: str) -> None:  # Ctrl-C once `stop_after` epochs are recorded
        if line.startswith("epoch") and len(storage.oneshot_epochs("oneshot")) == stop_after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _study(storage, **settings) as study:
        study.optimize(log=interrupt)
    assert len(storage.oneshot_epochs("oneshot")) == stop_after
    with _study(tmp_path / "r.db", **settings) as study:
        study.optimize()
    resumed = SQLiteStorage(tmp_path / "r.db")
    assert [e.arch_weights for e in resumed.oneshot_epochs("oneshot")] == [
        e.arch_weights for e in straight.oneshot_epochs("oneshot")]
    assert [t.key for t in resumed.trials("oneshot")] == [t.key for t in straight.trials("oneshot")]


def test_a_checkpoint_that_does_not_fit_the_supernet_is_refused_clearly(tmp_path: Path) -> None:
    def interrupt(line: str) -> None:  # Ctrl-C once one epoch is recorded
        if line.startswith("epoch"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _study(tmp_path / "r.db") as study:
        study.optimize(log=interrupt)
    # As written before the supernet held its fixed edges in a buffer.
    checkpoint = next((tmp_path / "r.db.oneshot" / "oneshot").glob("epoch-*.pt"))
    state = torch.load(checkpoint, weights_only=True)
    del state["supernet"]["fixed_cell"]
    torch.save(state, checkpoint)
    with pytest.raises(StorageError, match=r"after epoch 1 does not fit .*Missing key"), \
            _study(tmp_path / "r.db") as study:
        study.optimize()
    assert len(SQLiteStorage(tmp_path / "r.db").oneshot_epochs("oneshot")) == 1


def _epochs(db: Path) -> int:
    try:
        con = sqlite3.connect(db)
        try:
            return con.execute("SELECT COUNT(*) FROM oneshot_epochs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _kill_after_first_epochs(command: list[str], db: Path, total: int, at_least: int) -> int:
    """Run ``command``, kill -9 it once ``at_least`` epochs are in ``db``; the epochs done."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _epochs(db) < at_least and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _epochs(db)
    assert at_least <= done < total
    return done


#: A one-shot study through the Python API, as a user's script runs it (argv: the db).
_SCRIPT = """
import sys
import torch
import archsearch
from archsearch.data import load_digits
from archsearch.space.nb201 import NB201Space

torch.set_num_threads(1)

def cells(genotype):
    return float(sum("conv" in str(v) for v in genotype.values()))

study = archsearch.create_study(NB201Space(channels=4, cells_per_stage=1), "darts", cells,
                                storage=sys.argv[1], name="oneshot", seed=2,
                                data=load_digits(), strategy_params=%r)
study.optimize()
"""


def _figures(storage: InMemoryStorage | SQLiteStorage) -> list[tuple[Any, ...]]:
    """The recorded epochs without their timings."""
    return [(e.epoch, e.arch_weights, dict(e.genotype),
             {k: v for k, v in e.metrics.items() if not k.endswith("seconds")})
            for e in storage.oneshot_epochs("oneshot")]


def test_sigkill_during_a_python_one_shot_study_then_resume(tmp_path: Path) -> None:
    settings = {"epochs": 6, "batch_size": 32, "max_images": 300}
    db = tmp_path / "killed.db"
    _kill_after_first_epochs([sys.executable, "-c", _SCRIPT % settings, str(db)], db, 6, 1)
    with _study(db, **settings) as study:  # the same script's study, run to the end
        study.optimize()
    straight = InMemoryStorage()
    _study(straight, **settings).optimize()
    resumed = SQLiteStorage(db)
    assert _figures(resumed) == _figures(straight)
    assert [(t.key, t.value) for t in resumed.trials("oneshot")] == [
        (t.key, t.value) for t in straight.trials("oneshot")]
    assert [t.state.value for t in resumed.trials("oneshot")] == ["complete"]


def test_sigkill_during_a_one_shot_run_then_resume(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "study": {"name": "os", "seed": 1},
        "data": "digits",
        "space": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
        "strategy": {"name": "darts", "epochs": 8, "batch_size": 32, "max_images": 400},
        "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    killed = tmp_path / "killed.db"
    done = _kill_after_first_epochs(
        [sys.executable, "-m", "archsearch.cli", "run", str(path), "--storage", str(killed)],
        killed, 8, 2)

    # (That the resumed search equals an uninterrupted one is checked above.)
    assert main(["run", str(path), "--storage", str(killed)]) == 0
    out = capsys.readouterr().out
    assert f"resuming the darts search after epoch {done}" in out
    assert "trial 1/1 " in out  # one derived cell, whatever the config's trial budget
    record = SQLiteStorage(killed)
    epochs = record.oneshot_epochs("os")
    assert [e.epoch for e in epochs] == list(range(8))
    assert [t.genotype for t in record.trials("os")] == [epochs[-1].genotype]
    assert [t.state.value for t in record.trials("os")] == ["complete"]

    capsys.readouterr()
    assert main(["show", str(killed), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["best_trial"] == 0
    assert [e["epoch"] for e in shown["oneshot_epochs"]] == list(range(8))
    assert shown["oneshot_epochs"][-1]["arch_weights"] == epochs[-1].arch_weights
    assert main(["show", str(killed)]) == 0
    table = capsys.readouterr().out
    assert "one-shot search: 8 epochs recorded" in table
    assert main(["export", str(killed), "--out", str(tmp_path / "best")]) == 0
    assert (tmp_path / "best" / "model.pt").is_file()


def test_darts_space_one_shot_run(tmp_path: Path) -> None:
    space = DartsSpace(steps=2, channels=4, cells=3)
    study = archsearch.create_study(space, "gdas", "training", data=load_digits(),
                                    strategy_params=TINY,
                                    estimator_params={"epochs": 1, "latency_repeats": 1})
    study.optimize()
    assert study.trials[0].state.value == "complete"


# -- perturbation-based selection (DARTS-PT) --------------------------------------------------


def _importance_scorer(op_value: torch.Tensor, edge_value: torch.Tensor | None = None
                       ) -> Callable[[dict[str, Mixture]], float]:
    """A stand-in for validation accuracy, linear in the mixture weights: removing op k from
    edge e costs op_value[e, k] times its weight; dropping edge e costs edge_value[e]."""
    def accuracy(mixtures: dict[str, Mixture]) -> float:
        total = 0.0
        for m in mixtures.values():
            total += float((m.weights * op_value).sum())
            if edge_value is not None:
                total += float((m.weights.sum(dim=1) * edge_value).sum())
        return total
    return accuracy


def test_perturbation_selection_fixes_the_op_whose_removal_costs_most() -> None:
    net = _nb201()
    op_value = torch.rand(6, len(NB201_OPS), generator=torch.Generator().manual_seed(3))
    rounds = net.selection_rounds()
    g = torch.Generator().manual_seed(0)
    decided = [decide_round(net, _importance_scorer(op_value), g) for _ in range(rounds)]
    assert rounds == 6 and all(len(d) == 1 for d in decided)
    assert sorted(int(d[0].split()[2].rstrip(":")) for d in decided) == list(range(6))
    best = op_value.argmax(dim=1)
    assert torch.equal(net.fixed()["cell"], torch.eye(len(NB201_OPS))[best])
    assert [net.derive()[e] for e in sorted(net.derive())] == [
        NB201_OPS[int(k)] for k in best]
    # Fixed rows replace softmax(alpha) in the forward pass (and no gradient reaches them).
    net(torch.randn(2, 3, 8, 8)).sum().backward()
    assert net.alpha.grad is not None and not net.alpha.grad.any()
    assert decide_round(net, _importance_scorer(op_value), g) == []  # nothing left

    # include_none=False: 'none' is never a candidate, however much its removal would cost.
    op_value[:, NB201_OPS.index("none")] = 10.0
    space = NB201Space(channels=4, cells_per_stage=1)
    net = DartsSearch(space, include_none=False).build_supernet(10, 3)
    for _ in range(rounds):
        decide_round(net, _importance_scorer(op_value), g)
    assert "none" not in set(net.derive().values())


def test_perturbation_selection_on_the_darts_space_keeps_two_inputs_per_node() -> None:
    net = _darts()  # 2 steps: node 0 reads edges 0-1, node 1 reads edges 2-4
    g = torch.Generator().manual_seed(1)
    op_value = torch.rand(5, len(net.ops), generator=g)
    op_value[:, net.ops.index("none")] = 10.0  # never a candidate on the DARTS space
    edge_value = torch.tensor([0.0, 0.0, 3.0, 1.0, 2.0])
    rounds = net.selection_rounds()
    assert rounds == 5 + 1
    scorer = _importance_scorer(op_value, edge_value)
    for _ in range(rounds):
        decide_round(net, scorer, g)
    for kind in ("normal", "reduce"):
        fixed = net.fixed()[kind]
        assert not torch.isnan(fixed).any()
        assert fixed[3].sum() == 0 and fixed[[0, 1, 2, 4]].sum(dim=1).tolist() == [1.0] * 4
        ops = fixed.argmax(dim=1)
        assert net.ops[int(ops[0])] != "none"
        assert int(ops[0]) == max((k for k in range(len(net.ops)) if net.ops[k] != "none"),
                                  key=lambda k: float(op_value[0, k]))
    cell = net.space.cell(net.derive(), "normal")
    assert [source for _, source in cell[2:]] == [0, 2]  # node 1 keeps edges 2 and 4


@pytest.mark.parametrize("criterion", ["accuracy", "loss"])
def test_darts_pt_run_with_fixed_alpha_decides_every_edge(criterion: str) -> None:
    storage = InMemoryStorage()
    study = _study(storage, fix_alpha=True, selection_criterion=criterion, **PERTURBATION)
    strategy = study.strategy
    assert isinstance(strategy, DartsSearch)
    assert strategy.label == "darts-pt-fixed" and strategy.total_epochs == 3 + 5
    lines: list[str] = []
    study.optimize(log=lines.append)
    assert sum("perturbation selection fixes cell edge" in line for line in lines) == 6
    epochs = storage.oneshot_epochs("oneshot")
    assert len(epochs) == 8
    assert all(sorted(row) == [0.0] * 4 + [1.0] for row in epochs[-1].arch_weights["cell"])
    assert [t.genotype for t in study.trials] == [epochs[-1].genotype]
    initial = strategy.build_supernet(10, 1).alpha
    final = storage.load_oneshot_state("oneshot", 7)["supernet"]["alpha"]
    assert torch.equal(initial.detach(), final)  # alpha never trained


def _class_sorted_digits() -> Dataset:
    """The digits stored class by class, as an image folder stores its images."""
    digits = load_digits()
    order = np.argsort(digits.y_train, kind="stable")
    return dataclasses.replace(digits, x_train=digits.x_train[order],
                               y_train=digits.y_train[order])


def test_validation_slices_mix_the_classes_of_a_class_sorted_dataset() -> None:
    """The slices the selection scores and the eigenvalue's batch are drawn from a fixed
    random order, not the split's storage order (one class per slice on an image folder),
    and together they hold every validation image once."""
    strategy = DartsSearch(NB201Space(channels=4, cells_per_stage=1), max_images=600)
    data = prepare_search_data(_class_sorted_digits(), strategy.data, torch.device("cpu"))
    assert data.y_val[:64].unique().numel() <= 3  # the split keeps the storage order
    slices = data.val_slices(64)
    assert all(y.unique().numel() >= 5 for _, y in slices)
    assert data.y_val[data.val_order[:64]].unique().numel() >= 5  # the eigenvalue's batch
    assert sorted(torch.cat([y for _, y in slices]).tolist()) == sorted(data.y_val.tolist())
    assert min(y.numel() for _, y in slices) > 1
    again = prepare_search_data(_class_sorted_digits(), strategy.data, torch.device("cpu"))
    assert torch.equal(data.val_order, again.val_order)  # the same order every time


def test_the_eigenvalue_is_taken_on_images_of_every_class() -> None:
    """DARTS-ES's curvature is measured on the first images of ``val_order``, not on the
    first images of a split stored class by class."""
    from archsearch.oneshot.early_stop import eigenvalue_metrics, hessian_eigenvalue

    strategy = DartsSearch(NB201Space(channels=4, cells_per_stage=1), max_images=600,
                           early_stop=True, epochs=20)
    data = prepare_search_data(_class_sorted_digits(), strategy.data, torch.device("cpu"))
    search = strategy.make_search(strategy.build_supernet(10, 1))
    found = eigenvalue_metrics(search, data, 64)["hessian_eigenvalue"]
    mixed = data.val_order[:64]
    assert found == hessian_eigenvalue(search, data.x_val[mixed], data.y_val[mixed])
    assert found != hessian_eigenvalue(search, data.x_val[:64], data.y_val[:64])


def test_the_selection_measures_accuracy_or_loss_on_the_whole_validation_split() -> None:
    """The merit a decision compares: the fraction right on every validation image, or minus
    the mean cross-entropy over them (computed here in one batch), also where the images
    are stored class by class."""
    dataset = _class_sorted_digits()
    for criterion in ("accuracy", "loss"):
        strategy = DartsSearch(NB201Space(channels=4, cells_per_stage=1), seed=1,
                               selection="perturbation", selection_criterion=criterion,
                               max_images=300, batch_size=64)
        supernet = strategy.build_supernet(dataset.num_classes, 1)
        search = strategy.make_search(supernet)
        data = prepare_search_data(dataset, strategy.data, torch.device("cpu"))
        mixtures = supernet.softmax_mixtures()
        merit = selection_scorer(search, data, 64, criterion)(mixtures)
        supernet.train()
        with torch.no_grad():
            logits = supernet(data.x_val, mixtures)
        # Batch statistics differ between the one batch here and the scorer's chunks.
        if criterion == "loss":
            expected = -float(torch.nn.functional.cross_entropy(logits, data.y_val))
            assert merit == pytest.approx(expected, rel=0.05)
        else:
            expected = float((logits.argmax(1) == data.y_val).float().mean())
            assert merit == pytest.approx(expected, abs=0.05)


def test_perturbation_selection_settings_are_checked() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    with pytest.raises(ConfigError, match="unknown key 'selection'"):
        archsearch.create_study(space, "gdas", strategy_params={"selection": "perturbation"})
    with pytest.raises(ConfigError, match="fix_alpha is for selection='perturbation'"):
        DartsSearch(space, fix_alpha=True)
    with pytest.raises(ConfigError, match="selection must be one of"):
        DartsSearch(space, selection="magnitude")
    with pytest.raises(ConfigError, match="selection_interval must be >= 0"):
        DartsSearch(space, selection="perturbation", selection_interval=-1)
    with pytest.raises(ConfigError, match="selection_criterion must be one of"):
        DartsSearch(space, selection="perturbation", selection_criterion="entropy")
    with pytest.raises(ConfigError, match="selection_criterion / fix_alpha are for"):
        DartsSearch(space, selection_criterion="loss", fix_alpha=True)
    search = DartsSearch(space, selection="perturbation", selection_interval=2, fix_alpha=True)
    assert search.selection is not None and search.selection.interval == 2
    assert search.total_epochs == 50 + 5 * 2


def test_darts_pt_from_a_config_on_the_darts_space(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "study": {"name": "pt", "seed": 0},
        "data": "digits",
        "space": {"name": "darts", "steps": 2, "channels": 4, "cells": 3},
        "strategy": {"name": "darts", "epochs": 1, "batch_size": 32, "max_images": 200,
                     "selection": "perturbation", "selection_interval": 0},
        "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    db = tmp_path / "pt.db"
    assert main(["run", str(path), "--storage", str(db)]) == 0
    out = capsys.readouterr().out
    # 5 edges and then node 1's inputs, for both cell types, all after the only epoch.
    assert out.count("perturbation selection fixes normal edge") == 5
    assert out.count("perturbation selection fixes reduce node") == 1
    record = SQLiteStorage(db)
    (epoch,) = record.oneshot_epochs("pt")
    for kind in ("normal", "reduce"):
        assert sorted(sum(row) for row in epoch.arch_weights[kind]) == [0.0] + [1.0] * 4
    assert [t.state.value for t in record.trials("pt")] == ["complete"]
