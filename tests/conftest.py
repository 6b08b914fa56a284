"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny networks: a second intra-op thread only adds synchronisation, which costs
    minutes when the cores are shared (2 threads ran 10x slower than 1 on a busy 2-core
    machine), and a fixed count keeps CPU results bitwise reproducible."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
