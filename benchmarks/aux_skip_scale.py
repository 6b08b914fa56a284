"""How DARTS-'s auxiliary skips scale the activations of a NAS-Bench-201 supernet.

    python benchmarks/aux_skip_scale.py [--channels 16 --cells 5 --batch 32 --side 32]

Builds the supernet at its initial weights (seed 0; alpha ~ 1e-3 randn, so every mixed op
is a near-uniform mixture), passes one batch of standard normal images through it in
training mode and prints, per search cell, the standard deviation of the cell's output:
without auxiliary skips, with DARTS-'s auxiliary skips at ``skip_beta`` 1 (the first
epoch), 0.5 and 0.25, and with each auxiliary skip followed by an affine-free BN
(``auxiliary_op="skip_bn"``) at ``skip_beta`` 1.  NAS-Bench-201 chains its cells with
nothing in between, so whatever a cell passes on unnormalised compounds over the cells.
"""

from __future__ import annotations

import argparse

import torch

from archsearch.nn.supernet import NB201SearchCell, NB201Supernet

SETTINGS = (  # (label, skip_beta, auxiliary_op); beta None: no auxiliary skip (DARTS)
    ("no auxiliary skip", None, "skip"),
    ("DARTS-, beta 1", 1.0, "skip"),
    ("DARTS-, beta 0.5", 0.5, "skip"),
    ("DARTS-, beta 0.25", 0.25, "skip"),
    ("DARTS- with skip_bn, beta 1", 1.0, "skip_bn"),
)


def cell_spreads(channels: int, cells: int, batch: int, side: int, beta: float | None,
                 auxiliary_op: str) -> list[float]:
    torch.manual_seed(0)
    net = NB201Supernet(channels=channels, cells_per_stage=cells,
                        auxiliary_skip=beta is not None, auxiliary_op=auxiliary_op)
    net.skip_beta = beta or 0.0
    spreads: list[float] = []
    for layer in net.layers:
        if isinstance(layer, NB201SearchCell):
            layer.register_forward_hook(
                lambda module, inputs, output: spreads.append(output.float().std().item()))
    with torch.no_grad():
        net(torch.randn(batch, 3, side, side))
    return spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5, help="cells per stage (N)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--side", type=int, default=32)
    args = parser.parse_args()
    print(f"NB201 supernet C={args.channels}, N={args.cells}, batch {args.batch} of "
          f"{args.side}x{args.side}; std of each search cell's output:")
    for label, beta, auxiliary_op in SETTINGS:
        spreads = cell_spreads(args.channels, args.cells, args.batch, args.side, beta,
                               auxiliary_op)
        print(f"| {label} | " + " | ".join(f"{s:.3g}" for s in spreads) + " |")


if __name__ == "__main__":
    main()
