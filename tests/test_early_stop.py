"""DARTS-ES, the early stop on the architecture parameters: the Hessian's dominant
eigenvalue, the stopping rule, and an early-stopped one-shot study (in process, resumed,
and from a config through the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import archsearch
from archsearch.cli import main
from archsearch.data import load_digits
from archsearch.errors import ConfigError
from archsearch.nn.supernet import DartsSupernet, Mixture, NB201Supernet, Supernet
from archsearch.oneshot import DARTS, DartsSearch
from archsearch.oneshot.early_stop import EigenvalueStop, hessian_eigenvalue
from archsearch.space.nb201 import NB201Space
from archsearch.storage import InMemoryStorage, SQLiteStorage
from archsearch.study import Study

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _supernets() -> list[Supernet]:
    torch.manual_seed(0)
    return [NB201Supernet(channels=4, cells_per_stage=1, auxiliary_skip=True),
            DartsSupernet(channels=4, cells=3, steps=2)]


@pytest.mark.parametrize("index", [0, 1], ids=["nb201-darts-minus", "darts-space"])
def test_hessian_eigenvalue_is_exact_and_leaves_the_search_untouched(index: int) -> None:
    supernet = _supernets()[index]
    search = DARTS(supernet, epochs=2, auxiliary_skip=supernet.auxiliary_skip)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g)
    batch = (x, y, x.flip(0), y.flip(0))
    search.train_epoch(0, [batch], 1, g)  # alphas away from their initial values
    before = {k: v.clone() for k, v in supernet.state_dict().items()}

    # The Hessian written out independently: softmax(alpha) handed in as mixtures,
    # differentiated twice by torch.autograd.functional.hessian.
    alphas = supernet.alphas()
    shapes = [a.shape for a in alphas.values()]
    decay = search.a_optimizer.param_groups[0]["weight_decay"]

    def loss_of(flat: torch.Tensor) -> torch.Tensor:
        parts = flat.split([s.numel() for s in shapes])
        mixtures = {name: Mixture(p.view(s).softmax(dim=-1))
                    for name, p, s in zip(alphas, parts, shapes, strict=True)}
        return torch.nn.functional.cross_entropy(supernet(x, mixtures), y) \
            + decay / 2 * flat.square().sum()

    flat = torch.cat([a.detach().flatten() for a in alphas.values()])
    expected = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))[-1]
    supernet.load_state_dict(before)  # the reference's forward passes moved BN's statistics

    # NB201's 30 alphas take the dense path by default, the DARTS space's 80 Lanczos;
    # each is also checked on the other path where that is cheap.
    found = [hessian_eigenvalue(search, x, y)]
    if index == 0:
        found.append(hessian_eigenvalue(search, x, y, dense_limit=0))
    for value in found:
        assert value == pytest.approx(float(expected), rel=1e-4, abs=1e-6)
    # BN's statistics put back (the fixed-row buffers hold NaN: compared as equal).
    torch.testing.assert_close(supernet.state_dict(), before, rtol=0, atol=0, equal_nan=True)


def test_the_stopping_rule_follows_the_reference_windows() -> None:
    rule = EigenvalueStop()  # window 5, lag 4, factor 1.3, start 10
    flat = [1.0] * 30
    assert rule.stop_epoch(flat) is None
    # A jump at epoch 20: the first window mean over 1.3 times the one 4 epochs before is
    # epoch 18's (epochs 16-20: 1.6 against 1.0), known once epoch 20 is; back to 14.
    rising = [1.0] * 20 + [4.0] * 10
    assert rule.stop_epoch(rising) == 14
    assert rule.stop_epoch(rising[:20]) is None  # epoch 20 not yet seen
    # Nothing before `start` + `lag` is compared, however it rises.
    early = [1.0, 1.0, 5.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
    assert rule.stop_epoch(early) is None
    assert EigenvalueStop(window=1, lag=1, factor=2, start=0).stop_epoch(early) == 1
    # A negative earlier mean never triggers.
    assert EigenvalueStop(window=1, lag=1, factor=1.1, start=0).stop_epoch([-1.0, 1.0]) is None
    # The first epochs' means are cut short (the reference's growing window).
    assert rule.smoothed([1.0, 2.0, 3.0, 10.0, 10.0], 0) == pytest.approx(2.0)
    for bad in ({"window": 4}, {"window": 0}, {"lag": 0}, {"factor": 1.0}, {"start": -1}):
        with pytest.raises(ValueError):
            EigenvalueStop(**bad)


def _study(storage: InMemoryStorage | SQLiteStorage | Path, epochs: int = 6,
           **settings: Any) -> Study:
    def cells(genotype: Any) -> float:  # a stand-in for the table: counts convolutions
        return float(sum("conv" in str(v) for v in genotype.values()))

    return archsearch.create_study(
        NB201Space(channels=4, cells_per_stage=1), "darts", cells, storage=storage, name="es",
        seed=3, data=load_digits(),
        strategy_params={"epochs": epochs, "batch_size": 32, "max_images": 200, **settings})


#: A rule quick enough for 6 epochs: no smoothing, one epoch back, from the first epoch.
QUICK = {"early_stop_window": 1, "early_stop_lag": 1, "early_stop_start": 0}


def test_early_stop_returns_the_cell_the_rule_picks_from_a_tracked_run(tmp_path: Path) -> None:
    tracked = InMemoryStorage()
    _study(tracked, track_eigenvalue=True).optimize()
    records = tracked.oneshot_epochs("es")
    values = [r.metrics["hessian_eigenvalue"] for r in records]
    assert len(values) == 6 and all(np.isfinite(values))
    # The factor just under the largest rise from one epoch to the next: the rule fires
    # there and nowhere before.
    ratios = [b / a for a, b in zip(values, values[1:], strict=False) if a > 0]
    assert max(ratios) > 1.001, values  # the curvature rises somewhere in this run
    factor = (1 + max(ratios)) / 2
    stop = EigenvalueStop(1, 1, factor, 0).stop_epoch(values)
    assert stop is not None

    lines: list[str] = []
    storage = SQLiteStorage(tmp_path / "es.db")
    with _study(storage, early_stop=True, early_stop_factor=factor, **QUICK) as study:
        study.optimize(log=lines.append)
    stopped = storage.oneshot_epochs("es")
    # It ran until the rule could fire, recorded exactly what the tracked run did, and
    # proposed the cell of the epoch the rule went back to.
    assert len(stopped) == stop + 2  # the rule can fire once epoch stop + 1 is known
    assert [r.arch_weights for r in stopped] == [r.arch_weights for r in records[:len(stopped)]]
    assert [t.genotype for t in storage.trials("es")] == [records[stop].genotype]
    assert any(line.startswith(f"early stop after epoch {stop + 2}") for line in lines)
    assert isinstance(study.strategy, DartsSearch) and study.strategy.label == "darts-es"

    # Run again: it finds the decision in the record and trains nothing more.
    lines.clear()
    with _study(tmp_path / "es.db", early_stop=True, early_stop_factor=factor,
                **QUICK) as again:
        again.optimize(log=lines.append)
    assert len(SQLiteStorage(tmp_path / "es.db").oneshot_epochs("es")) == len(stopped)
    assert [line.split(":")[0] for line in lines] == [f"early stop after epoch {stop + 2}"]
    assert len(again.trials) == 1


def test_early_stop_settings_are_checked() -> None:
    space = NB201Space(channels=4, cells_per_stage=1)
    with pytest.raises(ConfigError, match="unknown key 'early_stop'"):
        archsearch.create_study(space, "gdas", strategy_params={"early_stop": True})
    with pytest.raises(ConfigError, match="DARTS-ES"):
        DartsSearch(space, selection="perturbation", track_eigenvalue=True)
    with pytest.raises(ConfigError, match="early_stop_window must be a positive odd"):
        DartsSearch(space, early_stop=True, early_stop_window=2)
    with pytest.raises(ConfigError, match="early_stop_lag is for early_stop=True"):
        DartsSearch(space, early_stop_lag=2)
    # The authors' rule needs 17 epochs (DARTS's 50 are enough, a 15-epoch search is not),
    # and the error says so before any training.
    assert EigenvalueStop().stop_epoch([1.0] * 16 + [9.0]) == 10
    assert EigenvalueStop().stop_epoch([1.0] * 15 + [9.0]) is None
    with pytest.raises(ConfigError, match="never fire in 16 epochs.*at least 17"):
        DartsSearch(space, epochs=16, early_stop=True)
    DartsSearch(space, epochs=17, early_stop=True)
    DartsSearch(space, epochs=16, track_eigenvalue=True)  # recording alone is fine
    # A study recorded without the eigenvalues cannot go on with the early stop.
    storage = InMemoryStorage()
    _study(storage, epochs=1).optimize()
    with pytest.raises(ConfigError, match="recorded without it"):
        _study(storage, epochs=2, early_stop=True, **QUICK).optimize()


def test_early_stop_from_a_config_shows_the_eigenvalues(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "study": {"name": "es", "seed": 0},
        "data": "digits",
        "space": {"name": "nb201", "channels": 4, "cells_per_stage": 1},
        "strategy": {"name": "darts", "epochs": 3, "batch_size": 32, "max_images": 200,
                     "early_stop": True, "early_stop_start": 0, "early_stop_lag": 1,
                     "early_stop_window": 1},
        "estimator": {"name": "training", "epochs": 1, "latency_repeats": 1},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    db = tmp_path / "es.db"
    assert main(["run", str(path), "--storage", str(db)]) == 0
    assert "hessian_eigenvalue" in capsys.readouterr().out
    epochs = SQLiteStorage(db).oneshot_epochs("es")
    assert len(epochs) == 3 and all(e.metrics["hessian_eigenvalue"] > 0 for e in epochs)
    assert main(["show", str(db)]) == 0
    assert "Hessian" in capsys.readouterr().out  # the column (its title may wrap)
