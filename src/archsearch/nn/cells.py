"""Cell-based networks: the NAS-Bench-201 macro network and the DARTS network.

Both are built from a cell's edge list, which the spaces give (``NB201Space.edges``,
``DartsSpace.cell``); the operations follow the published code (see
``/work/shared/REFERENCES.md`` sections 1.1-1.2 and 2.1-2.4):

* NAS-Bench-201: stem conv3x3 + BN (no ReLU); three stages of N cells with C, 2C, 4C
  channels, joined by residual reduction blocks; head BN-ReLU-global pool-Linear.  A cell
  has 4 nodes; node i is the sum over j < i of op(node j); the output is node 3.  Convs
  are ReLU-Conv-BN; pooling has no BN; ``none`` is a zero.
* DARTS: stem conv3x3 (3C) + BN; cells reading the two previous cells' outputs, reduction
  cells (stride 2, channels doubled) at 1/3 and 2/3 of the depth; output = the
  concatenation of the intermediate nodes; head global pool-Linear.  The auxiliary head
  and drop-path of DARTS's 600-epoch evaluation are not built.

Both return logits (NAS-Bench-201's own network also returns the pooled features).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

# -- operations ---------------------------------------------------------------------------


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BN; the conv has a bias only when the BN has no affine part."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, *, affine: bool = True, track: bool = True) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output's shape (subsampled first at stride 2)."""

    is_zero = True

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convs, the second on the input shifted
    by one pixel, concatenated, then BN (DARTS's skip at stride 2)."""

    def __init__(self, c_in: int, c_out: int, *, affine: bool = True, track: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Pad right and bottom so odd sizes give two halves of one shape.
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


class SepConv(nn.Sequential):
    """DARTS's separable conv: [ReLU, depthwise kxk, pointwise, BN] twice."""

    def __init__(self, c: int, kernel: int, stride: int, *, affine: bool = True,
                 track: bool = True) -> None:
        pad = kernel // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine, track_running_stats=track),
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine, track_running_stats=track),
        )


class DilConv(nn.Sequential):
    """DARTS's dilated conv: ReLU, depthwise kxk with dilation 2, pointwise, BN."""

    def __init__(self, c: int, kernel: int, stride: int, *, affine: bool = True,
                 track: bool = True) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c, c, kernel, stride, kernel - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine, track_running_stats=track),
        )


class AvgPool3x3(nn.Module):
    """3x3 average pooling, padding 1, ``count_include_pad=False`` (the zero padding would
    darken the border otherwise).

    At stride 1 on the CPU it is computed as a separable 3x3 box sum divided by the number
    of pixels each window covers: the same numbers (to float rounding) in about 2.5 times
    less time than ``F.avg_pool2d`` with ``count_include_pad=False``, which is the largest
    single cost of a NAS-Bench-201 supernet step on a CPU.
    """

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self._counts: dict[tuple[int, int, torch.dtype, torch.device], torch.Tensor] = {}

    @staticmethod
    def _box_sum(x: torch.Tensor) -> torch.Tensor:
        p = nn.functional.pad(x, (1, 1, 1, 1))
        rows = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
        return rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1 or x.device.type != "cpu":
            return nn.functional.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        h, w = x.shape[-2:]
        key = (h, w, x.dtype, x.device)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = self._box_sum(x.new_ones(1, 1, h, w))
        return self._box_sum(x) / counts


def _avg_pool(stride: int) -> nn.Module:
    return AvgPool3x3(stride)


def nb201_op(name: str, c: int, *, affine: bool = True, track: bool = True) -> nn.Module:
    """A NAS-Bench-201 op on ``c`` channels at stride 1 (cells never change the shape)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, affine=affine, track=track)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, padding=1, affine=affine, track=track)
    if name == "avg_pool_3x3":
        return _avg_pool(1)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}")


def darts_op(name: str, c: int, stride: int, *, affine: bool = True,
             track: bool = True) -> nn.Module:
    """A DARTS op on ``c`` channels; ``stride`` 2 on a reduction cell's input edges."""
    if name == "none":
        return Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine, track=track)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, padding=1)
    if name == "avg_pool_3x3":
        return _avg_pool(stride)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        return SepConv(c, int(name[-1]), stride, affine=affine, track=track)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        return DilConv(c, int(name[-1]), stride, affine=affine, track=track)
    raise ValueError(f"unknown DARTS op {name!r}")


# -- NAS-Bench-201 --------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """NAS-Bench-201's fixed reduction block: C_in -> C_out at stride 2, with a shortcut of
    2x2 average pooling and a 1x1 conv (no BN, no ReLU); no ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, padding=1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Cell(nn.Module):
    """A trained NAS-Bench-201 cell: ``edges`` lists (target, source, op).

    ``none`` edges add zero, so they are not computed; a node all of whose edges are
    ``none`` is zero (and a conv reading it still adds its BN's bias, as in NAS-Bench-201).
    """

    def __init__(self, edges: Sequence[tuple[int, int, str]], c: int) -> None:
        super().__init__()
        kept = [(i, j, op) for i, j, op in edges if op != "none"]
        self.ops = nn.ModuleList(nb201_op(op, c) for _, _, op in kept)
        self.targets = [i for i, _, _ in kept]
        self.sources = [j for _, j, _ in kept]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for op, i, j in zip(self.ops, self.targets, self.sources, strict=True):
            source = nodes[j]
            out = op(torch.zeros_like(x) if source is None else source)
            current = nodes[i]
            nodes[i] = out if current is None else current + out
        result = nodes[3]
        return torch.zeros_like(x) if result is None else result


def nb201_stem(in_channels: int, c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


def nb201_head(c: int, num_classes: int, *, affine: bool = True) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(c, affine=affine), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c, num_classes))


def nb201_body(make_cell: Callable[[int], nn.Module], channels: int,
               cells_per_stage: int) -> tuple[list[nn.Module], int]:
    """The 3 stages of cells with residual blocks between them; and the last width."""
    layers: list[nn.Module] = []
    c = channels
    for stage in range(3):
        if stage:
            layers.append(ResidualBlock(c, 2 * c))
            c *= 2
        layers.extend(make_cell(c) for _ in range(cells_per_stage))
    return layers, c


class NB201Network(nn.Module):
    """The NAS-Bench-201 network ("TinyNetwork") around one cell; C=16, N=5 by default.

    >>> net = NB201Network([(1, 0, "nor_conv_3x3"), (2, 0, "skip_connect"), (2, 1, "none"),
    ...                     (3, 0, "avg_pool_3x3"), (3, 1, "nor_conv_1x1"), (3, 2, "none")],
    ...                    channels=4, cells_per_stage=1, num_classes=10)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, edges: Sequence[tuple[int, int, str]], *, channels: int = 16,
                 cells_per_stage: int = 5, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nb201_stem(in_channels, channels)
        layers, c = nb201_body(lambda c: NB201Cell(edges, c), channels, cells_per_stage)
        self.layers = nn.Sequential(*layers)
        self.head = nb201_head(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


# -- DARTS ------------------------------------------------------------------------------


def darts_reductions(cells: int) -> tuple[int, ...]:
    """The indices of the reduction cells: 1/3 and 2/3 of the depth (DARTS's rule)."""
    return tuple(sorted({cells // 3, 2 * cells // 3})) if cells >= 3 else ()


@dataclass(frozen=True)
class DartsCellPlan:
    """Where one cell of a DARTS network sits: its input and output channels."""

    c_prev_prev: int
    c_prev: int
    c: int
    reduction: bool
    reduction_prev: bool


def darts_cell_plan(cells: int, channels: int, c_stem: int, steps: int) -> list[DartsCellPlan]:
    """The cells of a DARTS network, stem first: channels double at each reduction cell,
    and a cell outputs the concatenation of its ``steps`` nodes.  Shared by the network
    and its supernet, so the two always have the same shape."""
    plan = []
    c_prev_prev, c_prev, c = c_stem, c_stem, channels
    reductions, reduction_prev = darts_reductions(cells), False
    for index in range(cells):
        reduction = index in reductions
        if reduction:
            c *= 2
        plan.append(DartsCellPlan(c_prev_prev, c_prev, c, reduction, reduction_prev))
        c_prev_prev, c_prev, reduction_prev = c_prev, steps * c, reduction
    return plan


def darts_preprocess(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool, *,
                     affine: bool = True) -> tuple[nn.Module, nn.Module]:
    """The 1x1 convs (or a factorized reduction) that bring both cell inputs to ``c``."""
    pre0: nn.Module = (FactorizedReduce(c_prev_prev, c, affine=affine) if reduction_prev
                       else ReLUConvBN(c_prev_prev, c, 1, affine=affine))
    return pre0, ReLUConvBN(c_prev, c, 1, affine=affine)


class DartsCell(nn.Module):
    """A derived DARTS cell: ``edges`` lists (op, input), two per intermediate node."""

    def __init__(self, edges: Sequence[tuple[str, int]], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.pre0, self.pre1 = darts_preprocess(c_prev_prev, c_prev, c, reduction_prev)
        self.ops = nn.ModuleList(
            darts_op(op, c, 2 if reduction and i < 2 else 1) for op, i in edges)
        self.inputs = [i for _, i in edges]
        self.steps = len(edges) // 2

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(self.steps):
            a, b = 2 * k, 2 * k + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat(states[2:], dim=1)


def darts_stem(in_channels: int, c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR network (``NetworkCIFAR``) of ``cells`` cells, without the auxiliary
    head and drop-path.  ``normal`` and ``reduce`` are DARTS edge lists.

    >>> edges = [("sep_conv_3x3", 0), ("skip_connect", 1)] * 2
    >>> net = DartsNetwork(edges, edges, channels=4, cells=3, num_classes=10)
    >>> net(torch.zeros(2, 3, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]], *,
                 channels: int = 16, cells: int = 8, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3) -> None:
        super().__init__()
        if len(normal) != len(reduce) or len(normal) % 2:
            raise ValueError("normal and reduce cells must list 2 edges per node, alike")
        steps = len(normal) // 2
        c_stem = stem_multiplier * channels
        self.stem = darts_stem(in_channels, c_stem)
        plan = darts_cell_plan(cells, channels, c_stem, steps)
        self.cells = nn.ModuleList(
            DartsCell(reduce if p.reduction else normal, p.c_prev_prev, p.c_prev, p.c,
                      p.reduction, p.reduction_prev) for p in plan)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(steps * plan[-1].c if plan else c_stem, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.head(s1)
