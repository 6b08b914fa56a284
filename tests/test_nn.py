"""Networks from layer lists, and their cost."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.estimation.cost import count_flops, count_parameters, latency_stats
from archsearch.nn import build_network
from archsearch.space import ChainSpace, LayerSpec, MultiBranchSpace

IMAGE_OPS = ("conv3x3", "conv5x5", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity")
ALL = dict(activations=("relu", "gelu", "silu", "tanh"), norms=("batchnorm", "layernorm", "none"))
IMAGES = [(1, 8, 8), (3, 16, 16)]
SPACES = {
    "chain-image": (ChainSpace("image", ops=IMAGE_OPS, widths=(4, 8), stem_width=6, **ALL), IMAGES),
    "multi-image": (MultiBranchSpace("image", ops=IMAGE_OPS, widths=(4, 8), stem_width=6, **ALL),
                    IMAGES),
    "chain-vector": (ChainSpace("vector", ops=("dense", "identity"), **ALL), [(20,)]),
    "multi-vector": (MultiBranchSpace("vector", ops=("dense", "identity"), **ALL), [(20,)]),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Set before the module's other module-scoped fixtures compute anything."""


@pytest.mark.parametrize("name", sorted(SPACES))
def test_random_genotypes_build_and_train_one_step(name: str) -> None:
    space, shapes = SPACES[name]
    rng = np.random.default_rng(0)
    merges = set()
    for shape in shapes:
        for _ in range(30):
            genotype = space.sample(rng)
            merges |= {spec.merge for spec in space.layers(genotype)}
            model = space.build_network(genotype, shape, num_classes=5)
            out = model(torch.randn(3, *shape))
            assert out.shape == (3, 5)
            out.sum().backward()  # every parameter that took part has a finite gradient
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert all(torch.isfinite(g).all() for g in grads)
    if name.startswith("multi"):
        assert merges == {"sum", "concat"}  # the sample did exercise both merges


def test_sum_projects_to_the_predecessor_and_concat_adds_channels() -> None:
    layers = [
        LayerSpec("conv3x3", 8, "relu", "batchnorm", (0,)),
        LayerSpec("identity", None, None, None, (0, 1), "sum"),  # 16-ch stem projected to 8
        LayerSpec("maxpool3x3", None, None, None, (0, 1, 2), "concat"),  # 16 + 8 + 8
        LayerSpec("sepconv3x3", 4, "gelu", "layernorm", (3,)),
    ]
    model = build_network(layers, (3, 10, 10), 7)
    assert [layer.out_channels for layer in model.layers] == [8, 8, 32, 4]
    assert isinstance(model.layers[1].project[0], nn.Conv2d)
    assert isinstance(model.layers[1].project[1], nn.Identity)
    assert model(torch.randn(2, 3, 10, 10)).shape == (2, 7)

    vector = build_network([LayerSpec("identity", None, None, None, (0,))], (20,), 3)
    assert vector(torch.randn(4, 20)).shape == (4, 3)


@pytest.mark.parametrize(
    "spec, shape",
    [
        (LayerSpec("dense", 8, "relu", "none", (0,)), (1, 8, 8)),
        (LayerSpec("conv3x3", 8, "relu", "none", (0,)), (20,)),
        (LayerSpec("conv3x3", 8, "relu", "none", (1,)), (1, 8, 8)),
        (LayerSpec("conv3x3", 8, "swish", "none", (0,)), (1, 8, 8)),
    ],
)
def test_invalid_layers_are_refused(spec: LayerSpec, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        build_network([spec], shape, 3)


def test_flops_match_the_analytic_count() -> None:
    assert count_flops(nn.Linear(20, 10), (20,)) == 2 * 20 * 10
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (3, 16, 16)) == 2 * (8 * 16 * 16) * (3 * 3 * 3)
    assert count_parameters(conv) == 8 * 3 * 3 * 3 + 8


def test_cost_of_a_built_network() -> None:
    space = MultiBranchSpace("image", widths=(8,))
    genotype = space.sample(np.random.default_rng(1))
    model = space.build_network(genotype, (1, 8, 8), 10)
    model.train()
    assert count_parameters(model) > 0
    assert count_flops(model, (1, 8, 8)) > 0
    assert 0 < latency_stats(model, (1, 8, 8), "cpu", warmup=1, repeats=3).median < 1
    assert model.training  # the caller's mode is restored


def test_the_space_package_never_imports_torch() -> None:
    code = "import sys, archsearch.space; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
