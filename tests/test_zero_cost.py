"""Zero-cost proxies: each checked against an independent numpy computation on a tiny
network, determinism for a seed, and every proxy on the trainable spaces."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import archsearch
from archsearch.data.dataset import Dataset
from archsearch.errors import ConfigError
from archsearch.estimation.base import TrialContext
from archsearch.estimation.zero_cost import PROXIES, ZeroCostEstimator, compute_proxy
from archsearch.space import ChainSpace
from archsearch.trial import TrialState

CLASSES = tuple(str(c) for c in range(10))
N, D, H, C = 4, 5, 8, 3


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread: tiny networks, and bitwise-reproducible CPU results."""


def digits(vector: bool = False) -> Dataset:
    data = load_digits()
    x = (data.images[:, None] / 16).astype(np.float32)  # (N, 1, 8, 8)
    if vector:
        x = x.reshape(len(x), -1)
    y = data.target.astype(np.int64)
    return Dataset("digits", x[:300], y[:300], x[300:400], y[300:400], CLASSES)


# -- a tiny network and numpy ---------------------------------------------------------

def _tiny() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    w = {"W1": rng.normal(size=(H, D)), "b1": rng.normal(size=H) * 0.1,
         "W2": rng.normal(size=(C, H)), "b2": rng.normal(size=C) * 0.1}
    x = rng.normal(size=(N, D))
    y = np.array([0, 2, 1, 2])
    return w, x, y


def _torch_net(w: dict[str, np.ndarray]) -> nn.Sequential:
    first, second = nn.Linear(D, H).double(), nn.Linear(H, C).double()
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(w["W1"]))
        first.bias.copy_(torch.from_numpy(w["b1"]))
        second.weight.copy_(torch.from_numpy(w["W2"]))
        second.bias.copy_(torch.from_numpy(w["b2"]))
    return nn.Sequential(first, nn.ReLU(), second)


def _np_grads(w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Forward and backward of the mean cross-entropy, by hand."""
    z = x @ w["W1"].T + w["b1"]
    a = np.maximum(z, 0)
    o = a @ w["W2"].T + w["b2"]
    p = np.exp(o - o.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    do = (p - np.eye(C)[y]) / len(x)
    dz = (do @ w["W2"]) * (z > 0)
    return {"z": z, "o": o, "do": do, "dz": dz, "W1": dz.T @ x, "W2": do.T @ a}


def _np_proxy(name: str, w: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    g = _np_grads(w, x, y)
    if name == "snip":
        return float(np.abs(w["W1"] * g["W1"]).sum() + np.abs(w["W2"] * g["W2"]).sum())
    if name == "grad_norm":
        return float(np.linalg.norm(g["W1"]) + np.linalg.norm(g["W2"]))
    if name == "fisher":
        return float(0.5 * ((g["z"] * g["dz"]) ** 2).mean(0).sum()
                     + 0.5 * ((g["o"] * g["do"]) ** 2).mean(0).sum())
    if name == "grasp":  # H g by central differences of the hand-written gradient
        eps = 1e-5
        plus = {**w, "W1": w["W1"] + eps * g["W1"], "W2": w["W2"] + eps * g["W2"]}
        minus = {**w, "W1": w["W1"] - eps * g["W1"], "W2": w["W2"] - eps * g["W2"]}
        gp, gm = _np_grads(plus, x, y), _np_grads(minus, x, y)
        return float(sum(-(w[k] * (gp[k] - gm[k]) / (2 * eps)).sum() for k in ("W1", "W2")))
    if name == "synflow":  # all-positive weights: every ReLU passes, R = sum of outputs
        a1, b1, a2 = np.abs(w["W1"]), np.abs(w["b1"]), np.abs(w["W2"])
        z = a1 @ np.ones(D) + b1
        d_a = a2.sum(axis=0)  # dR/d(hidden)
        return float((a2 * np.maximum(z, 0)[None]).sum() + (a1 * d_a[:, None]).sum())
    if name == "jacob_cov":
        jac = ((w["W2"].sum(axis=0) * (g["z"] > 0)) @ w["W1"])  # row n: d sum(o_n) / d x_n
        v = np.linalg.eig(np.corrcoef(jac))[0].real  # as the reference: numpy's eig
        return float(-np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5)))
    if name == "naswot":
        codes = (g["z"] > 0).astype(float)
        kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
        return float(np.linalg.slogdet(kernel)[1])
    if name == "params":
        return float(D * H + H + H * C + C)
    if name == "flops":  # a multiply-add is 2 FLOPs; biases not counted
        return float(2 * (D * H + H * C))
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(PROXIES))
def test_proxy_matches_numpy(name: str) -> None:
    w, x, y = _tiny()
    net = _torch_net(w)
    before = [p.detach().clone() for p in net.parameters()]
    value = compute_proxy(name, net, torch.from_numpy(x), torch.from_numpy(y))
    expected = _np_proxy(name, w, x, y)
    assert math.isfinite(expected) and expected != 0
    assert value == pytest.approx(expected, rel=1e-6)
    # Scored on a copy: the caller's network is untouched (synflow takes |theta|).
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_synflow_ignores_normalisation_and_data() -> None:
    w, x, y = _tiny()
    net = _torch_net(w)
    normed = nn.Sequential(net[0], nn.BatchNorm1d(H), net[1], nn.LayerNorm(H), net[2]).double()
    xt = torch.from_numpy(x)
    a = compute_proxy("synflow", net, xt, torch.from_numpy(y))
    b = compute_proxy("synflow", normed, xt * 7, torch.from_numpy(y))
    assert a == b == pytest.approx(_np_proxy("synflow", w, x, y), rel=1e-12)


# -- the estimator --------------------------------------------------------------------

SPACE = ChainSpace("image", max_depth=2, widths=(8, 16))


@pytest.fixture(scope="module")
def data() -> Dataset:
    return digits()


def test_metrics_and_determinism(data: Dataset) -> None:
    genotype = SPACE.sample(np.random.default_rng(0))
    for name in PROXIES:
        est = ZeroCostEstimator(data, SPACE, proxy=name, batch_size=16)
        assert est.objective == name and est.direction == "maximize"
        first = dict(est.evaluate(genotype, TrialContext(number=0, seed=11)))
        again = dict(est.evaluate(genotype, TrialContext(number=0, seed=11)))
        assert set(first) == {name, "proxy_seconds", "params", "flops"}
        assert first[name] == again[name]  # bitwise, on the CPU
        assert first["proxy_seconds"] >= 0
        if name in ("params", "flops"):
            continue
        other = est.evaluate(genotype, TrialContext(number=1, seed=12))[name]
        assert other != first[name]  # another seed: another initialisation (and batch)


def test_batch_is_drawn_from_the_seed(data: Dataset) -> None:
    est = ZeroCostEstimator(data, SPACE, batch_size=8)
    x1, y1 = est.batch(5)
    x2, y2 = est.batch(5)
    x3, _ = est.batch(6)
    assert x1.shape == (8, 1, 8, 8) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)


def test_bad_settings_are_config_errors(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="unknown proxy 'nope'.*synflow.*naswot"):
        archsearch.create_study("chain", estimator="zero-cost", data=data,
                                estimator_params={"proxy": "nope"})
    with pytest.raises(ConfigError, match="batch_size"):
        ZeroCostEstimator(data, SPACE, batch_size=1)
    with pytest.raises(ConfigError, match="val_fraction"):
        ZeroCostEstimator(data, SPACE, val_fraction=1.0)
    with pytest.raises(ConfigError, match="needs a dataset"):
        ZeroCostEstimator(None, SPACE).evaluate(SPACE.sample(np.random.default_rng(0)),
                                                TrialContext(number=0, seed=0))


SPACES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "chain-image": ("chain", {"modality": "image", "max_depth": 2, "widths": (8, 16)}, False),
    "multi-branch-vector": ("multi-branch", {"modality": "vector", "max_depth": 3,
                                             "widths": (16, 32)}, True),
    "nb201": ("nb201", {"channels": 4, "cells_per_stage": 1}, False),
    "darts": ("darts", {"channels": 4, "cells": 2}, False),
}


@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize("proxy", list(PROXIES))
def test_every_proxy_on_every_space(space: str, proxy: str) -> None:
    name, params, vector = SPACES[space]
    study = archsearch.create_study(name, estimator="zero-cost", data=digits(vector),
                                    space_params=params, seed=1,
                                    estimator_params={"proxy": proxy, "batch_size": 16})
    study.optimize(trials=2)
    trials = study.trials
    assert len(trials) == 2
    for trial in trials:
        assert trial.state == TrialState.COMPLETE, trial.error
        assert math.isfinite(trial.metrics[proxy])
        assert {"proxy_seconds", "params", "flops"} <= set(trial.metrics)


class _IgnoresInput(nn.Module):
    """A network whose output does not depend on its input (a disconnected cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(D, C)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.relu(torch.ones_like(x)))


def test_a_network_that_ignores_its_input() -> None:
    x = torch.from_numpy(_tiny()[1]).float()
    y = torch.tensor([0, 1, 2, 0])
    net = _IgnoresInput()
    assert math.isnan(compute_proxy("jacob_cov", net, x, y))
    assert compute_proxy("naswot", net, x, y) == -math.inf  # every code the same
    for name in ("synflow", "snip", "grad_norm", "fisher", "grasp"):
        assert math.isfinite(compute_proxy(name, net, x, y))
