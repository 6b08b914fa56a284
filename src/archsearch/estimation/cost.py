"""Cost of a network: parameters, FLOPs and batch-1 latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: str | torch.device,
    *,
    warmup: int = 5,
    repeats: int = 20,
) -> float:
    """Median seconds of a batch-1 forward pass on ``device`` (eval mode, no grad), after
    ``warmup`` untimed passes.  The model is moved to ``device``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = torch.device(device)
    model.to(device)
    x = torch.zeros(1, *input_shape, device=device)
    cuda = device.type == "cuda"
    times = []
    with _eval_mode(model), torch.no_grad():
        for i in range(warmup + repeats):
            if cuda:  # CUDA runs asynchronously: time the kernels, not their launch
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


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
