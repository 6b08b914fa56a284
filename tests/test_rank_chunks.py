"""The rank studies' chunked, resumable work (``benchmarks/proxy_ranking.py``'s
``run_chunks``): shards split the chunks without overlap, and a run reads back what is
saved instead of computing it again."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("proxy_ranking", BENCHMARKS / "proxy_ranking.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_shards_compute_each_chunk_once_and_a_last_run_reads_all(tmp_path: Path) -> None:
    script = load_script()
    computed: list[list[int]] = []

    def compute(_work: Any, part: list[int]) -> dict[str, Any]:
        computed.append(part)
        return {"indices": part, "score": [i * 2 for i in part]}

    indices = list(range(10))
    config = {"seed": 0}
    first = script.run_chunks(tmp_path, indices, 3, config, lambda: None, compute, (0, 2))
    assert computed == [[0, 1, 2], [6, 7, 8]]
    assert [c["indices"] for c in first] == [[0, 1, 2], [6, 7, 8]]
    script.run_chunks(tmp_path, indices, 3, config, lambda: None, compute, (1, 2))
    assert computed[2:] == [[3, 4, 5], [9]]
    every = script.run_chunks(tmp_path, indices, 3, config, lambda: None, compute)
    assert len(computed) == 4  # nothing computed twice
    assert [i for c in every for i in c["indices"]] == indices
    assert every[3]["score"] == [18]


def test_a_chunk_saved_with_other_settings_is_not_mixed_in(tmp_path: Path) -> None:
    script = load_script()
    compute = lambda _w, part: {"indices": part}  # noqa: E731
    script.run_chunks(tmp_path, [1, 2], 2, {"seed": 0}, lambda: None, compute)
    with pytest.raises(SystemExit, match="other settings"):
        script.run_chunks(tmp_path, [1, 2], 2, {"seed": 1}, lambda: None, compute)


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(SystemExit, match="--shard"):
        load_script().parse_shard(text)
