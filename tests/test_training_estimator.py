"""TrainingEstimator on a small slice of sklearn's digits (8x8 images, 10 classes)."""

from __future__ import annotations

import gc
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from archsearch.data.dataset import Dataset
from archsearch.estimation import TrainingEstimator, TrialContext, TrialFailed, TrialTimeout
from archsearch.nn import Network
from archsearch.space import ChainSpace, Genotype

CLASSES = tuple(str(c) for c in range(10))
METRICS = {"val_accuracy", "test_accuracy", "train_loss", "params", "flops", "train_seconds",
           "latency_seconds", "latency_spread_seconds", "epochs"}
TIMINGS = {"train_seconds", "latency_seconds", "latency_spread_seconds"}
SPACE = ChainSpace("image", max_depth=2, widths=(16, 32), norms=("batchnorm", "none"))
# Two convolutions: reliably > 0.9 validation accuracy after 3 epochs on 480 images.
CONV = Genotype.of({
    "depth": 2,
    "layer0.op": "conv5x5", "layer0.width": 32, "layer0.activation": "relu",
    "layer0.norm": "batchnorm",
    "layer1.op": "conv3x3", "layer1.width": 32, "layer1.activation": "relu",
    "layer1.norm": "batchnorm",
})
PLAIN = CONV.replace(**{"layer0.norm": "none", "layer1.norm": "none"})


def digits(n_train: int = 600, n_test: int = 300, *, uint8: bool = False) -> Dataset:
    data = load_digits()
    x = data.images[:, None]  # (N, 1, 8, 8), values 0..16
    x = (x * 15).astype(np.uint8) if uint8 else (x / 16).astype(np.float32)
    y = data.target.astype(np.int64)
    end = n_train + n_test
    return Dataset("digits", x[:n_train], y[:n_train], x[n_train:end], y[n_train:end], CLASSES)


def estimator(dataset: Dataset | None = None, **kwargs: object) -> TrainingEstimator:
    # CPU pinned: bitwise reproducibility is promised there, not for CUDA kernels.
    args: dict = dict(epochs=3, lr=1e-2, batch_size=32, latency_repeats=2, device="cpu") | kwargs
    return TrainingEstimator(dataset or digits(), SPACE, **args)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Set before the module's other module-scoped fixtures compute anything."""


@pytest.fixture(scope="module")
def trained() -> tuple[TrainingEstimator, dict[str, float]]:
    est = estimator()
    return est, dict(est.evaluate(CONV, TrialContext(number=0, seed=7)))


def untimed(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def test_metrics_are_complete_and_well_above_chance(trained: tuple) -> None:
    est, metrics = trained
    assert set(metrics) == METRICS
    assert metrics["val_accuracy"] > 0.8 and metrics["test_accuracy"] > 0.7
    assert metrics["params"] > 0 and metrics["flops"] > 0 and metrics["epochs"] == 3
    assert metrics["train_seconds"] > 0 and metrics["latency_seconds"] > 0
    assert est.objective == "val_accuracy" and est.direction == "maximize"


def test_same_seed_same_metrics_other_seed_other_metrics(trained: tuple) -> None:
    est, metrics = trained
    state = torch.get_rng_state()
    again = dict(est.evaluate(CONV, TrialContext(number=5, seed=7)))
    assert untimed(again) == untimed(metrics)
    other = dict(est.evaluate(CONV, TrialContext(number=0, seed=8)))
    assert other["train_loss"] != metrics["train_loss"]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone


def test_same_seed_same_metrics_in_a_fresh_process(trained: tuple) -> None:
    code = (
        "import json, torch, tests.test_training_estimator as t\n"
        "torch.set_num_threads(1)\n"
        "m = t.estimator().evaluate(t.CONV, t.TrialContext(0, 7))\n"
        "print(json.dumps(t.untimed(dict(m))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == untimed(trained[1])


def test_vector_and_uint8_inputs() -> None:
    flat = digits()
    vectors = Dataset("digits-flat", flat.x_train.reshape(-1, 64), flat.y_train,
                      flat.x_test.reshape(-1, 64), flat.y_test, CLASSES)
    space = ChainSpace("vector", max_depth=1)
    genotype = Genotype.of({"depth": 1, "layer0.op": "dense", "layer0.width": 64,
                            "layer0.activation": "relu", "layer0.norm": "batchnorm"})
    metrics = TrainingEstimator(vectors, space, epochs=3, lr=1e-2, batch_size=32,
                                latency_repeats=2, device="cpu").evaluate(genotype, TrialContext(0, 0))
    assert metrics["val_accuracy"] > 0.8

    # uint8 pixels are scaled by 1/255, then standardised like float inputs.
    raw = estimator(digits(uint8=True), latency_repeats=1)
    assert raw.evaluate(CONV, TrialContext(0, 0))["val_accuracy"] > 0.8


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_non_finite_loss_fails_the_trial_and_frees_the_model(optimizer: str) -> None:
    before = sum(type(o) is Network for o in gc.get_objects())
    with pytest.raises(TrialFailed, match=r"non-finite loss at epoch 1 step \d+"):
        estimator(lr=1e30, optimizer=optimizer).evaluate(PLAIN, TrialContext(0, 0))
    gc.collect()
    assert sum(type(o) is Network for o in gc.get_objects()) == before


def test_timeout() -> None:
    with pytest.raises(TrialTimeout):
        estimator().evaluate(CONV, TrialContext(0, 0, timeout=1e-9))


def test_train_final(trained: tuple) -> None:
    est, metrics = trained
    model, final = est.train_final(CONV, 7, include_validation=False)
    # The same loop as evaluate: the same seed gives the same model.
    assert final["test_accuracy"] == metrics["test_accuracy"]
    assert final["val_accuracy"] == metrics["val_accuracy"]
    # The exported model standardises its inputs itself: it takes the dataset's arrays.
    with torch.no_grad():
        logits = model(torch.from_numpy(est.dataset.x_test))
    accuracy = (logits.argmax(1).numpy() == est.dataset.y_test).mean()
    assert accuracy == pytest.approx(final["test_accuracy"], abs=1e-9)

    _, full = est.train_final(CONV, 7, include_validation=True)
    assert "val_accuracy" not in full and full["test_accuracy"] > 0.7


def test_pickles_without_its_device_tensors(trained: tuple) -> None:
    est, _ = trained
    assert est._tensors is not None
    clone = pickle.loads(pickle.dumps(est))
    assert clone._tensors is None and clone.epochs == est.epochs


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        estimator(optimizer="rmsprop").evaluate(CONV, TrialContext(0, 0))
    with pytest.raises(ValueError, match="val_fraction"):
        estimator(val_fraction=0.0).evaluate(CONV, TrialContext(0, 0))
