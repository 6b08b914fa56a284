"""Where a network runs, and in what precision: shared by training and one-shot search."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; any other name is torch's."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(bf16: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocasting on CUDA when ``bf16``; full precision otherwise (the CPU's
    bf16 kernels are slower than its float32 ones)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
