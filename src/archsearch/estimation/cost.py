"""Cost of a network: parameters, FLOPs and forward-pass latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsearch.nn.device import resolve_device


def count_parameters(model: nn.Module) -> int:
    """All parameters (trainable or not); buffers such as BatchNorm statistics excluded."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a batch-1 input of ``input_shape`` (eval mode, no grad).

    The number is exactly what PyTorch's ``torch.utils.flop_counter.FlopCounterMode``
    reports: it counts matrix multiplications and convolutions, a multiply-add as 2 FLOPs,
    and ignores cheap elementwise work (norms, activations, pooling, additions).
    """
    x = torch.zeros(1, *input_shape, device=_device_of(model))
    with _eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class LatencyResult:
    """Forward-pass latency: the ``median`` of ``repeats`` timed passes and their
    ``spread`` (interquartile range), both in seconds, on ``device`` at ``batch_size``
    with ``threads`` intra-op CPU threads (``None`` on an accelerator, where it does not
    apply)."""

    median: float
    spread: float
    repeats: int
    device: str
    batch_size: int
    threads: int | None


def latency_stats(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device = "cpu",
    *,
    batch_size: int = 1,
    warmup: int = 5,
    repeats: int = 20,
    threads: int = 1,
) -> LatencyResult:
    """Time ``repeats`` forward passes of a ``(batch_size, *input_shape)`` input on
    ``device`` (eval mode, no grad) after ``warmup`` untimed ones.

    ``device`` is where the network would be deployed (``"auto"``: CUDA when available),
    not necessarily where it was trained.  On the CPU, torch's intra-op thread count is
    pinned to ``threads`` for the measurement and restored afterwards, so figures are
    comparable across machines' defaults and repeatable; on CUDA every pass is bracketed
    by synchronisations so the kernels are timed, not their launch.  The caller's model
    comes back on its own device, in its own train/eval mode.
    """
    for name, value in (("batch_size", batch_size), ("repeats", repeats), ("threads", threads)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    target = resolve_device(device) if isinstance(device, str) else torch.device(device)
    cuda = target.type == "cuda"
    pin = target.type == "cpu"
    home = _device_of(model)
    previous_threads = torch.get_num_threads()
    times = []
    try:
        if pin:
            torch.set_num_threads(threads)
        model.to(target)
        x = torch.zeros(batch_size, *input_shape, device=target)
        with _eval_mode(model), torch.no_grad():
            for i in range(warmup + repeats):
                if cuda:  # CUDA runs asynchronously: time the kernels, not their launch
                    torch.cuda.synchronize(target)
                start = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize(target)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.to(home)
        if pin:
            torch.set_num_threads(previous_threads)
    return LatencyResult(
        median=statistics.median(times),
        spread=_iqr(times),
        repeats=repeats,
        device=str(target),
        batch_size=batch_size,
        threads=threads if pin else None,
    )


def _iqr(values: list[float]) -> float:
    """Interquartile range (quartiles interpolated as numpy's default); 0 for one value."""
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 - q1


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block (batch-1 BatchNorm needs it), then the caller's mode back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
