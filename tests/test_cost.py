"""Latency measurement: what it reports, what it leaves alone, and a sanity ordering."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from archsearch.estimation.cost import LatencyResult, latency_stats


def _small() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


def test_the_result_reports_median_spread_and_settings() -> None:
    result = latency_stats(_small(), (1, 8, 8), batch_size=3, warmup=1, repeats=4, threads=1)
    assert isinstance(result, LatencyResult)
    assert 0 < result.median < 1
    assert result.spread >= 0
    assert (result.repeats, result.device, result.batch_size, result.threads) == (4, "cpu", 3, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, "median", 0.0)  # noqa: B010 (frozen: refused)
    assert latency_stats(_small(), (1, 8, 8), warmup=0, repeats=1).spread == 0.0
    assert 0 < latency_stats(_small(), (1, 8, 8), warmup=0, repeats=2).median < 1


def test_the_thread_count_is_pinned_for_the_measurement_only() -> None:
    before = torch.get_num_threads()
    seen = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x

    latency_stats(Probe(), (4,), warmup=1, repeats=2, threads=1)
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before

    class Boom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        latency_stats(Boom(), (4,), threads=1)
    assert torch.get_num_threads() == before  # restored on failure too


@pytest.mark.parametrize("training", [True, False])
def test_the_callers_model_is_left_as_it_was(training: bool) -> None:
    model = _small().train(training)
    device = next(model.parameters()).device
    latency_stats(model, (1, 8, 8), warmup=1, repeats=2)
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    assert next(model.parameters()).device == device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_model_is_measured_on_the_cpu_and_sent_back() -> None:
    model = _small().cuda().train()
    result = latency_stats(model, (1, 8, 8), "cpu", warmup=1, repeats=2)
    assert result.device == "cpu" and result.threads == 1
    assert next(model.parameters()).is_cuda and model.training
    on_gpu = latency_stats(model, (1, 8, 8), "cuda", warmup=1, repeats=2)
    assert on_gpu.device.startswith("cuda") and on_gpu.threads is None


def test_a_much_larger_network_measures_slower() -> None:
    # ~2,400x the multiply-adds: no amount of machine noise reverses this ordering.
    tiny = nn.Conv2d(4, 4, 1)
    wide = nn.Conv2d(256, 256, 3, padding=1)
    fast = latency_stats(tiny, (4, 32, 32), warmup=1, repeats=5).median
    slow = latency_stats(nn.Sequential(nn.Conv2d(4, 256, 1), wide), (4, 32, 32),
                         warmup=1, repeats=5).median
    assert slow > fast


@pytest.mark.parametrize("setting", [
    {"batch_size": 0}, {"repeats": 0}, {"threads": 0}, {"warmup": -1},
])
def test_bad_settings_are_refused(setting: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        latency_stats(_small(), (1, 8, 8), **setting)


@pytest.mark.parametrize("setting", ["latency_batch_size", "latency_repeats", "latency_threads"])
def test_the_estimator_refuses_bad_latency_settings(setting: str) -> None:
    from archsearch.estimation import TrainingEstimator

    with pytest.raises(ValueError, match=f"{setting} must be >= 1"):
        TrainingEstimator(**{setting: 0})


def test_the_estimator_reports_latency_with_its_spread() -> None:
    import numpy as np

    from archsearch.data.dataset import Dataset
    from archsearch.estimation import TrainingEstimator, TrialContext
    from archsearch.space import ChainSpace

    rng = np.random.default_rng(0)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = np.arange(60) % 2
    data = Dataset("toy", x[:40], y[:40], x[40:], y[40:], ("a", "b"))
    space = ChainSpace("image", max_depth=1, widths=(4,))
    est = TrainingEstimator(data, space, epochs=1, batch_size=16, device="cpu",
                            latency_device="cpu", latency_batch_size=4, latency_repeats=3,
                            latency_threads=1)
    genotype = space.sample(np.random.default_rng(1))
    metrics = est.evaluate(genotype, TrialContext(number=0, seed=0))
    assert 0 < metrics["latency_seconds"] < 1
    assert metrics["latency_spread_seconds"] >= 0
