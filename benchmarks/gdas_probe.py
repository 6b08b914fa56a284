"""What a GDAS supernet's architecture gradient says, against what its ops are worth.

    python benchmarks/gdas_probe.py --epochs 40 --seed 0 --threads 1 [--set cells=5 ...]

Runs a GDAS search on the NAS-Bench-201 space (``benchmarks/oneshot_nb201.py``'s
cpu-reduced preset, the same data and loop), then probes the trained supernet on its
whole validation split, one batch of ``--batch`` images at a time, with the ops of all
edges sampled from ``softmax(alpha)`` (one sample per batch, as the search draws them):

* **worth**: per edge and op, the mean validation loss and accuracy with that edge forced
  to the op and the other edges as sampled (the same samples for every op of an edge):
  what choosing the op is worth to this supernet, the quantity GDAS's objective
  E_{cell ~ softmax(alpha)}[val loss] ranks the ops by.
* **push**: per edge and op, over the batches of 64 that sampled the op (``--passes``
  passes over the validation split, a fresh sample per batch), the mean of
  ``S - G``, where ``G`` is the loss's derivative with respect to the op's one-hot weight
  (the inner product of the node's gradient with the op's output) and ``S`` the
  derivative with respect to each unsampled op's weight (the sum of the node's gradient:
  GDAS adds those weights, zero in value, to the node).  Through the straight-through
  softmax, alpha's step raises the sampled op's logit in proportion to ``S - G``; a
  positive push means "more of this op".

Prints one table per edge (alpha's softmax, worth, push) and, per edge, whether the op
alpha prefers is the one worth the most; ``--out`` writes the same as Markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

import archsearch
from archsearch.data import load_dataset
from archsearch.nn.supernet import Mixture, Supernet
from archsearch.oneshot.data import prepare_search_data
from archsearch.oneshot.gdas import GDAS
from archsearch.oneshot.search import GdasSearch
from archsearch.space.nb201 import NB201_EDGE_NAMES, NB201Space
from archsearch.tabular.nb201 import NB201Estimator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oneshot_nb201 import PRESETS, _parse_value  # noqa: E402  (a sibling script)


def _forced(sample: Mixture, edge: int, op: int) -> Mixture:
    """``sample`` with ``edge`` forced to ``op`` (weights one-hot, no gradient)."""
    chosen = list(sample.chosen or ())
    chosen[edge] = op
    weights = torch.zeros_like(sample.weights)
    weights[torch.arange(len(chosen)), torch.tensor(chosen)] = 1.0
    return Mixture(weights, tuple(chosen))


def _shuffled(x: torch.Tensor, y: torch.Tensor, batch: int, generator: torch.Generator
              ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # The split is stored class by class: shuffle, or a batch's BN statistics (training
    # mode, as in the search) would be those of one class.
    order = torch.randperm(x.shape[0], generator=generator)
    return [(x[order[s:s + batch]], y[order[s:s + batch]])
            for s in range(0, x.shape[0] - batch + 1, batch)]


def push(search: GDAS, x_val: torch.Tensor, y_val: torch.Tensor, batch: int, passes: int,
         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (edge, op): the mean push over the batches that sampled the op, its standard
    error, and how many batches did (``passes`` passes over the validation split)."""
    edges, ops = search.supernet.alphas()["cell"].shape
    found: list[list[list[float]]] = [[[] for _ in range(ops)] for _ in range(edges)]
    for _ in range(passes):
        for x, y in _shuffled(x_val, y_val, batch, generator):
            sample = search.sample(generator)["cell"]
            # Gradients with respect to the hard one-hot weights themselves.
            hard = sample.weights.detach().clone().requires_grad_(True)
            loss, _ = search.loss(x, y, {"cell": Mixture(hard, sample.chosen)})
            (grad,) = torch.autograd.grad(loss, hard)
            for e, k in enumerate(sample.chosen or ()):
                unsampled = grad[e, (k + 1) % ops]  # every unsampled op has the same S
                found[e][k].append(float(unsampled - grad[e, k]))
    values = [[torch.tensor(v or [float("nan")], dtype=torch.float64) for v in row]
              for row in found]
    mean = torch.tensor([[float(v.mean()) for v in row] for row in values])
    error = torch.tensor([[float(v.std() / len(v) ** 0.5) if len(v) > 1 else float("nan")
                           for v in row] for row in values])
    count = torch.tensor([[len(v) for v in row] for row in found], dtype=torch.float64)
    return mean, error, count


def probe(search: GDAS, x_val: torch.Tensor, y_val: torch.Tensor, batch: int,
          passes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Worth (loss, accuracy) and push per (edge, op), and how often each op was sampled."""
    supernet: Supernet = search.supernet
    supernet.train()
    alpha = supernet.alphas()["cell"]
    edges, ops = alpha.shape
    loss_sum = torch.zeros(edges, ops, dtype=torch.float64)
    right_sum = torch.zeros(edges, ops, dtype=torch.float64)
    pushed, error, count = push(search, x_val, y_val, 64, passes, generator)
    batches = 0
    for x, y in _shuffled(x_val, y_val, batch, generator):
        sample = search.sample(generator)["cell"]
        with torch.no_grad():
            for e in range(edges):
                for k in range(ops):
                    loss, right = search.loss(x, y, {"cell": _forced(sample, e, k)})
                    loss_sum[e, k] += float(loss)
                    right_sum[e, k] += float(right) / y.shape[0]
        batches += 1
    return {"loss": loss_sum / batches, "accuracy": right_sum / batches,
            "push": pushed, "push_error": error, "sampled": count,
            "alpha": alpha.detach().double(), "probs": alpha.detach().softmax(-1).double()}


def report(found: dict[str, torch.Tensor], op_names: tuple[str, ...]) -> list[str]:
    lines = []
    agree = 0
    for e, edge in enumerate(NB201_EDGE_NAMES):
        lines += [f"\nedge {edge}", "",
                  "| op | alpha | softmax | worth: val loss | val acc | push (S - G) +- s.e. "
                  "| sampled |",
                  "|---|---|---|---|---|---|---|"]
        for k, op in enumerate(op_names):
            lines.append(f"| {op} | {found['alpha'][e, k]:+.3f} | {found['probs'][e, k]:.3f} | "
                         f"{found['loss'][e, k]:.4f} | {found['accuracy'][e, k]:.3f} | "
                         f"{found['push'][e, k]:+.4f} +- {found['push_error'][e, k]:.4f} | "
                         f"{int(found['sampled'][e, k])} |")
        preferred = int(found["probs"][e].argmax())
        best = int(found["loss"][e].argmin())
        agree += preferred == best
        lines.append(f"\nalpha prefers {op_names[preferred]}; the lowest loss: {op_names[best]}")
    lines.append(f"\nalpha's choice is the op worth the most on {agree} of "
                 f"{len(NB201_EDGE_NAMES)} edges")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=250, help="batch size of the worth")
    parser.add_argument("--passes", type=int, default=10,
                        help="passes over the validation split for the push (batch 64)")
    parser.add_argument("--data", default=os.environ.get(
        "ARCHSEARCH_CIFAR10", "../shared/datasets/cifar10-jpeg.tar.xz"))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a cpu-reduced preset setting")
    parser.add_argument("--out", type=Path, help="write the tables here (Markdown)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    settings: dict[str, Any] = {**PRESETS["cpu-reduced"], "epochs": args.epochs,
                                "warmup_epochs": 0}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        settings[key] = _parse_value(value)
    settings.pop("max_minutes", None)

    dataset = load_dataset(args.data)
    space = NB201Space(settings["channels"], settings["cells"])
    study = archsearch.create_study(space, "gdas", NB201Estimator(), name="probe",
                                    seed=args.seed, data=dataset,
                                    strategy_params={"device": "cpu", **settings})
    strategy = study.strategy
    assert isinstance(strategy, GdasSearch)
    began = time.perf_counter()
    study.optimize(log=lambda line: print(line, flush=True))
    records = study.storage.oneshot_epochs("probe")
    # The trained supernet again, from the last epoch's checkpoint.
    data = prepare_search_data(dataset, strategy.data, torch.device("cpu"))
    supernet = strategy.build_supernet(dataset.num_classes, data.input_shape[0])
    search = strategy.make_search(supernet)
    assert isinstance(search, GDAS)
    search.load_state_dict(study.storage.load_oneshot_state("probe", records[-1].epoch))
    search.tau = float(records[-1].metrics["tau"])
    generator = torch.Generator().manual_seed(args.seed)
    found = probe(search, data.x_val, data.y_val, args.batch, args.passes, generator)
    header = (f"GDAS probe: seed {args.seed}, {settings}; derived cell "
              f"{space.to_string(records[-1].genotype)}; {time.perf_counter() - began:.0f} s")
    lines = [header, *report(found, supernet.ops)]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
