"""TrainingEstimator's learning curve, fidelity (``TrialContext.epochs``), checkpoints and
``train_fraction``, with real training on sklearn's digits (see test_training_estimator)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from archsearch.estimation import Evaluation, TrainingEstimator, TrialContext, TrialFailed
from archsearch.execution.base import run_job
from test_training_estimator import CONV, METRICS, PLAIN, estimator, untimed

PARTIAL = {"val_accuracy", "train_loss", "epochs", "train_seconds", "params", "flops"}
SEED = 7


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Set before the module's other module-scoped fixtures compute anything."""


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainingEstimator, str, Evaluation]:
    """A 3-epoch schedule stopped after epoch 2, its checkpoint saved (tests only read it)."""
    est = estimator(epochs=3)
    path = str(tmp_path_factory.mktemp("ckpt") / "trial.pt")
    result = est.evaluate(CONV, TrialContext(0, SEED, epochs=2, checkpoint=path))
    return est, path, result


def _spy_on_models(est: TrainingEstimator, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The models ``evaluate`` trains, kept for comparing their weights."""
    models: list[Any] = []
    train = est._train

    def spy(*args: Any, **kwargs: Any) -> Any:
        trained = train(*args, **kwargs)
        models.append(trained.model)
        return trained

    monkeypatch.setattr(est, "_train", spy)
    return models


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_curve_has_one_entry_per_epoch() -> None:
    est = estimator(epochs=3)
    assert est.max_epochs == 3
    outcome = run_job(est, 0, CONV, TrialContext(0, SEED))  # as the study runs it
    assert outcome.error is None and outcome.metrics is not None
    assert set(outcome.metrics) == METRICS and outcome.metrics["epochs"] == 3
    assert [p["epoch"] for p in outcome.curve] == [1.0, 2.0, 3.0]
    assert all(set(p) == {"epoch", "val_accuracy", "train_loss"} for p in outcome.curve)
    assert outcome.curve[-1]["val_accuracy"] == outcome.metrics["val_accuracy"]
    assert outcome.curve[-1]["train_loss"] == outcome.metrics["train_loss"]
    assert outcome.curve[0]["train_loss"] > outcome.curve[-1]["train_loss"]


def test_a_stopped_run_reports_partial_metrics_and_reads_as_a_mapping(stopped: tuple) -> None:
    _, path, result = stopped
    assert isinstance(result, Evaluation)
    assert set(result.metrics) == PARTIAL and result.metrics["epochs"] == 2
    assert [p["epoch"] for p in result.curve] == [1.0, 2.0]
    # Code written when evaluate returned a mapping keeps working.
    assert dict(result) == dict(result.metrics) and result["epochs"] == 2
    assert os.path.exists(path) and not os.path.exists(path + ".partial")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_continuing_from_a_checkpoint_equals_training_straight(
    optimizer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    est = estimator(epochs=3, optimizer=optimizer)
    resumed, straight = str(tmp_path / "resumed.pt"), str(tmp_path / "straight.pt")
    first = est.evaluate(CONV, TrialContext(0, SEED, epochs=1, checkpoint=resumed))
    second = est.evaluate(CONV, TrialContext(0, SEED, epochs=2, checkpoint=resumed))
    direct = est.evaluate(CONV, TrialContext(0, SEED, epochs=2, checkpoint=straight))
    assert untimed(dict(second.metrics)) == untimed(dict(direct.metrics))
    assert second.curve == direct.curve and second.curve[:1] == first.curve
    assert second.metrics["train_seconds"] > first.metrics["train_seconds"]  # cumulative
    a, b = (torch.load(p, weights_only=True) for p in (resumed, straight))
    assert a["epoch"] == b["epoch"] == 2 and torch.equal(a["order"], b["order"])
    _assert_same_weights(a["model"], b["model"])
    for moments_a, moments_b in zip(a["optimizer"]["state"].values(),
                                    b["optimizer"]["state"].values(), strict=True):
        _assert_same_weights(moments_a, moments_b)

    # On to the end of the schedule: the same as a run that never stopped.
    models = _spy_on_models(est, monkeypatch)
    full = est.evaluate(CONV, TrialContext(0, SEED, checkpoint=resumed))
    plain = est.evaluate(CONV, TrialContext(0, SEED))
    assert set(full.metrics) == METRICS
    assert untimed(dict(full.metrics)) == untimed(dict(plain.metrics))
    assert full.curve == plain.curve and len(full.curve) == 3
    _assert_same_weights(models[0].state_dict(), models[1].state_dict())


def test_a_checkpoint_at_the_asked_epoch_is_scored_without_training(
    stopped: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    est, path, result = stopped

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the checkpoint was at the asked epoch")

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", no_training)
    again = est.evaluate(CONV, TrialContext(0, SEED, epochs=2, checkpoint=path))
    assert dict(again.metrics) == dict(result.metrics)  # train_seconds included: none added
    assert again.curve == result.curve
    with pytest.raises(TrialFailed, match="at epoch 2, beyond the 1 epochs"):
        est.evaluate(CONV, TrialContext(0, SEED, epochs=1, checkpoint=path))


def test_a_checkpoint_of_another_trial_or_setting_is_refused(stopped: tuple) -> None:
    est, path, _ = stopped
    with pytest.raises(TrialFailed, match="belongs to another trial"):
        est.evaluate(CONV, TrialContext(0, SEED + 1, epochs=3, checkpoint=path))
    with pytest.raises(TrialFailed, match="belongs to another trial"):
        est.evaluate(PLAIN, TrialContext(0, SEED, epochs=3, checkpoint=path))
    with pytest.raises(TrialFailed, match="other training settings"):
        estimator(epochs=3, lr=0.5).evaluate(CONV, TrialContext(0, SEED, checkpoint=path))


def test_epochs_out_of_range_are_refused() -> None:
    est = estimator(epochs=3)
    for epochs in (0, 4):
        with pytest.raises(ValueError, match=rf"1\.\.3 .*got {epochs}"):
            est.evaluate(CONV, TrialContext(0, SEED, epochs=epochs))


_unpickled: list[str] = []


def _record_unpickling(tag: str) -> str:
    _unpickled.append(tag)
    return tag


class _Trap:
    """Runs ``_record_unpickling`` when unpickled by a loader that runs code."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _record_unpickling, ("ran",)


def test_a_checkpoint_is_read_with_weights_only(tmp_path: Path) -> None:
    est = estimator(epochs=3)
    trap, other = str(tmp_path / "trap.pt"), str(tmp_path / "other.pt")
    torch.save({"format": 1, "seed": SEED, "payload": _Trap()}, trap)
    with pytest.raises(TrialFailed, match="cannot read checkpoint"):
        est.evaluate(CONV, TrialContext(0, SEED, epochs=1, checkpoint=trap))
    assert _unpickled == []
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(TrialFailed, match="not an archsearch training checkpoint"):
        est.evaluate(CONV, TrialContext(0, SEED, epochs=1, checkpoint=other))


def _count_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch sizes the loss is computed on from now on, one entry per step."""
    seen: list[int] = []
    cross_entropy = torch.nn.functional.cross_entropy

    def counting(logits: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(logits.shape[0])
        return cross_entropy(logits, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", counting)
    return seen


def test_train_fraction_trains_on_a_fixed_stratified_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="train_fraction"):
            estimator(train_fraction=bad)
    est = estimator(epochs=1, train_fraction=0.25)
    data = est._data()
    rows = est._fit_rows(data)
    assert rows is not None
    assert torch.equal(rows, estimator(epochs=1, train_fraction=0.25)._fit_rows(data))
    per_class, kept = torch.bincount(data.y_fit), torch.bincount(data.y_fit[rows])
    assert ((kept - 0.25 * per_class).abs() <= 1).all()

    seen = _count_rows(monkeypatch)
    small = est.evaluate(CONV, TrialContext(0, SEED))
    assert sum(seen) == len(rows) // 32 * 32  # one epoch of whole batches of 32
    again = est.evaluate(CONV, TrialContext(0, SEED))
    assert untimed(dict(small.metrics)) == untimed(dict(again.metrics))
    seen.clear()
    full = estimator(epochs=1).evaluate(CONV, TrialContext(0, SEED))
    assert sum(seen) == data.y_fit.shape[0] // 32 * 32
    assert full.metrics["train_loss"] != small.metrics["train_loss"]


def test_nested_subsets_keep_every_class_and_grow_by_adding_rows() -> None:
    import numpy as np

    from archsearch.data import nested_subset

    y = np.repeat(np.arange(4), [40, 10, 3, 1])
    small, large = nested_subset(y, 1 / 9, 5), nested_subset(y, 1 / 3, 5)
    assert set(small) <= set(large) and list(large) == sorted(large)
    assert np.bincount(y[small], minlength=4).tolist() == [4, 1, 1, 1]  # at least one each
    assert np.bincount(y[large], minlength=4).tolist() == [13, 3, 1, 1]
    assert nested_subset(y, 1.0, 5).tolist() == list(range(y.size))
    assert not np.array_equal(nested_subset(y, 1 / 3, 6), large)  # the seed chooses
    with pytest.raises(ValueError, match="fraction must be in"):
        nested_subset(y, 0.0, 5)


def test_a_data_fraction_trains_the_whole_schedule_on_nested_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    est = estimator(epochs=2, train_fraction=0.5)
    assert est.data_fidelity
    data = est._data()
    half, third, ninth = (est._fit_rows(data, f) for f in (None, 1 / 3, 1 / 9))
    assert half is not None and third is not None and ninth is not None
    assert set(ninth.tolist()) <= set(third.tolist()) <= set(half.tolist())
    assert torch.equal(est._fit_rows(data, 1.0), half)

    seen = _count_rows(monkeypatch)
    result = est.evaluate(CONV, TrialContext(0, SEED, data_fraction=1 / 3))
    assert sum(seen) == 2 * (len(third) // 32 * 32)  # both epochs, on a third of the rows
    assert set(result.metrics) == PARTIAL | {"data_fraction"}  # no test set, no latency
    assert [e["data_fraction"] for e in result.curve] == [1 / 3, 1 / 3]
    assert [e["epoch"] for e in result.curve] == [1.0, 2.0]
    again = est.evaluate(CONV, TrialContext(0, SEED, data_fraction=1 / 3))
    assert untimed(dict(result.metrics)) == untimed(dict(again.metrics))
    whole = est.evaluate(CONV, TrialContext(0, SEED, data_fraction=1.0))
    assert "test_accuracy" in whole.metrics and whole.metrics["data_fraction"] == 1.0


def test_a_data_fraction_is_a_new_run_not_a_continuation(tmp_path: Path) -> None:
    est = estimator(epochs=2)
    for context, words in [
        (TrialContext(0, SEED, data_fraction=0.5, epochs=1), "does not combine"),
        (TrialContext(0, SEED, data_fraction=0.5, checkpoint=str(tmp_path / "c.pt")),
         "does not combine"),
        (TrialContext(0, SEED, data_fraction=0.0), r"data_fraction must be in \(0, 1\]"),
        (TrialContext(0, SEED, data_fraction=1.5), r"data_fraction must be in \(0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=words):
            est.evaluate(CONV, context)
