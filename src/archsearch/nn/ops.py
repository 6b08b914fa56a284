"""The building blocks a ``LayerSpec`` names: activations, norms and operations.

Every operation keeps the spatial size (stride 1, "same" padding), so any list of
layers a chain or multi-branch space produces is shape-valid without bookkeeping of
resolutions.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.space.chain import LayerSpec

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh,
}
_IMAGE_CONVS = {"conv3x3": 3, "conv5x5": 5}  # op -> kernel size


def make_activation(name: str) -> nn.Module:
    """``"relu" | "gelu" | "silu" | "tanh"`` as a fresh module."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def make_norm(name: str, channels: int, *, image: bool) -> nn.Module:
    """``batchnorm``, ``layernorm`` (``GroupNorm(1, C)`` on images) or ``none``."""
    if name == "none":
        return nn.Identity()
    if name == "batchnorm":
        return nn.BatchNorm2d(channels) if image else nn.BatchNorm1d(channels)
    if name == "layernorm":
        return nn.GroupNorm(1, channels) if image else nn.LayerNorm(channels)
    raise ValueError(f"unknown norm {name!r}; choose from 'batchnorm', 'layernorm', 'none'")


def make_op(spec: LayerSpec, in_channels: int, *, image: bool) -> tuple[nn.Module, int]:
    """The layer's operation on ``in_channels`` inputs, and its output channel count.

    Weighted ops are weights -> norm -> activation; pooling and identity keep the
    channel count.
    """
    op = spec.op
    if op == "identity":
        return nn.Identity(), in_channels
    if image and op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1), in_channels
    if image and op == "avgpool3x3":
        # Without count_include_pad the zero padding would darken the border pixels.
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False), in_channels

    if spec.width is None or spec.activation is None or spec.norm is None:
        raise ValueError(f"op {op!r} needs a width, an activation and a norm: {spec}")
    width = spec.width
    bias = spec.norm != "batchnorm"  # a bias right before BatchNorm is cancelled by it
    weights: nn.Module
    if image and op in _IMAGE_CONVS:
        k = _IMAGE_CONVS[op]
        weights = nn.Conv2d(in_channels, width, k, padding=k // 2, bias=bias)
    elif image and op == "sepconv3x3":
        weights = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, width, 1, bias=bias),
        )
    elif not image and op == "dense":
        weights = nn.Linear(in_channels, width, bias=bias)
    else:
        kind = "image" if image else "vector"
        raise ValueError(f"op {op!r} is not defined for {kind} input")
    block = nn.Sequential(
        weights, make_norm(spec.norm, width, image=image), make_activation(spec.activation)
    )
    return block, width


def make_projection(in_channels: int, out_channels: int, *, image: bool) -> nn.Module:
    """A 1x1 convolution (or a linear map) that aligns channel counts before a sum."""
    if image:
        return nn.Conv2d(in_channels, out_channels, 1, bias=False)
    return nn.Linear(in_channels, out_channels, bias=False)


class Standardize(nn.Module):
    """``(x * scale - mean) / std`` per channel (dim 1): the input transform an estimator
    trained with, so an exported model takes inputs as the ``Dataset`` stores them."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, scale: float, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.scale = scale
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)  # broadcast over batch and spatial dims
        return (x.float() * self.scale - self.mean.view(shape)) / self.std.view(shape)
