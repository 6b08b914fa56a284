"""Seconds per supernet search epoch: archsearch's NAS-Bench-201 supernet and DARTS step
against the same network and step written by hand as one plain PyTorch module.

    python benchmarks/supernet_overhead.py --threads 1
    python benchmarks/supernet_overhead.py --channels 16 --cells 5 --side 32 --steps 10

Both run a first-order DARTS epoch (alpha step on a validation batch, then weight step on a
training batch, SGD + Adam, gradient clipping) on the same random batches:

* ``archsearch``: ``NB201Supernet`` + ``archsearch.oneshot.DARTS.train_epoch``.
* ``hand-written``: one module holding the ops in nested lists, ``softmax(alpha)`` summed
  over each edge, and the two optimiser steps inline.  It uses the same op modules (so the
  ratio measures the abstraction: mixtures, the epoch loop, its bookkeeping) and the same
  gradient calls (``backward(inputs=...)``: each step computes only the gradients it uses).
* ``hand-written, as in the NB201 scripts``: for context, the hand-written module with
  ``nn.AvgPool2d`` and plain ``loss.backward()`` (all gradients every step).

Rounds alternate the variants; the figure is the median seconds per epoch over rounds,
and the ratio archsearch / hand-written (target <= 1.15).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.nn.cells import AvgPool3x3, ReLUConvBN, ResidualBlock
from archsearch.nn.supernet import NB201Supernet
from archsearch.oneshot import DARTS

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class HandWrittenSupernet(nn.Module):
    """The NAS-Bench-201 supernet in one class: a 6 x 5 alpha, each edge a list of ops."""

    def __init__(self, c: int, n: int, classes: int, torch_pool: bool) -> None:
        super().__init__()

        def pool() -> nn.Module:
            if torch_pool:
                return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
            return AvgPool3x3()

        def edge(ch: int) -> nn.ModuleList:  # 'none' is left out: it adds zero
            return nn.ModuleList([nn.Identity(), ReLUConvBN(ch, ch, 1, affine=False),
                                  ReLUConvBN(ch, ch, 3, padding=1, affine=False), pool()])

        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.layers = nn.ModuleList()
        ch = c
        for stage in range(3):
            if stage:
                self.layers.append(ResidualBlock(ch, 2 * ch))
                ch *= 2
            for _ in range(n):
                self.layers.append(nn.ModuleList([edge(ch) for _ in EDGES]))
        self.head = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(ch, classes))
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(OPS)))

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        w = self.alpha.softmax(-1)
        if detach:
            w = w.detach()
        x = self.stem(x)
        for layer in self.layers:
            if isinstance(layer, ResidualBlock):
                x = layer(x)
                continue
            nodes = [x]
            for i in (1, 2, 3):
                total = None
                for j in range(i):
                    e = EDGES.index((i, j))
                    ops = layer[e]  # type: ignore[index]
                    s = w[e, 1] * ops[0](nodes[j]) + w[e, 2] * ops[1](nodes[j]) \
                        + w[e, 3] * ops[2](nodes[j]) + w[e, 4] * ops[3](nodes[j])
                    total = s if total is None else total + s
                nodes.append(total)  # type: ignore[arg-type]
            x = nodes[3]
        return self.head(x)


def hand_written_epoch(net: HandWrittenSupernet, batches: list[tuple[torch.Tensor, ...]],
                       selective: bool) -> None:
    weights = [p for name, p in net.named_parameters() if name != "alpha"]
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    a_opt = torch.optim.Adam([net.alpha], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    net.train()
    for xt, yt, xv, yv in batches:
        a_opt.zero_grad()
        loss = F.cross_entropy(net(xv), yv)
        loss.backward(inputs=[net.alpha]) if selective else loss.backward()
        a_opt.step()
        w_opt.zero_grad()
        loss = F.cross_entropy(net(xt, detach=selective), yt)
        loss.backward(inputs=weights) if selective else loss.backward()
        nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()


def library_epoch(net: NB201Supernet, batches: list[tuple[torch.Tensor, ...]]) -> None:
    search = DARTS(net, epochs=1)
    search.train_epoch(0, batches, len(batches), torch.Generator())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1, help="cells per stage (N)")
    parser.add_argument("--side", type=int, default=16, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)

    def batch() -> tuple[torch.Tensor, ...]:
        return (torch.randn(args.batch, 3, args.side, args.side, generator=g),
                torch.randint(0, 10, (args.batch,), generator=g),
                torch.randn(args.batch, 3, args.side, args.side, generator=g),
                torch.randint(0, 10, (args.batch,), generator=g))

    batches = [batch() for _ in range(args.steps)]
    c, n = args.channels, args.cells
    variants: dict[str, Callable[[], None]] = {
        "archsearch": lambda: library_epoch(
            NB201Supernet(channels=c, cells_per_stage=n), batches),
        "hand-written": lambda: hand_written_epoch(
            HandWrittenSupernet(c, n, 10, torch_pool=False), batches, selective=True),
        "hand-written, as in the NB201 scripts": lambda: hand_written_epoch(
            HandWrittenSupernet(c, n, 10, torch_pool=True), batches, selective=False),
    }
    for run in variants.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    print(f"NB201 supernet C={c} N={n}, {args.side}x{args.side}, batch {args.batch}, "
          f"{args.steps} first-order DARTS steps per epoch, {args.threads} thread(s), "
          f"{args.rounds} rounds (median):")
    base = statistics.median(times["hand-written"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<40} {median:7.2f} s/epoch  {median / args.steps * 1000:7.1f} ms/step  "
              f"ratio to hand-written {median / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
