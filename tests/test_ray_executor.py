"""The Ray executor on a real local cluster (skipped when Ray is absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before Ray is imported: keep every node on loopback; let workers import the test helpers.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
ray = pytest.importorskip("ray")

from archsearch.execution.ray_executor import RayExecutor  # noqa: E402
from archsearch.space import ChainSpace  # noqa: E402
from archsearch.strategy import RandomSearch  # noqa: E402
from archsearch.study import Budget, Study  # noqa: E402
from archsearch.trial import FrozenTrial, TrialState  # noqa: E402
from fault_estimator import FaultyEstimator  # noqa: E402


def _space() -> ChainSpace:
    return ChainSpace("vector", max_depth=3, widths=(8, 16), norms=("none",))


@pytest.fixture
def no_ray_running() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.mark.usefixtures("no_ray_running")
def test_ray_in_process_with_faults(tmp_path: Path) -> None:
    space = _space()
    faults = {1: "raise", 2: "nan", 3: "sleep", 5: "kill-once"}
    study = Study(space, RandomSearch(space), FaultyEstimator(faults, marker_dir=str(tmp_path)),
                  seed=0, trial_timeout=4.0)
    # The grace covers the retry of the killed trial 5, which must start a new worker
    # process (seconds on a busy machine): the limit counts from submission.
    executor = RayExecutor(workers=2, local_cpus=2, grace_seconds=15.0)
    nodes: list[str] = []
    study.optimize(budget=Budget(trials=8), executor=executor,
                   callbacks=[lambda *_: nodes.extend(n["NodeManagerAddress"] for n in ray.nodes())])
    assert set(nodes) == {"127.0.0.1"}  # loopback only
    by_number = {t.number: t for t in study.trials}
    assert len(by_number) == 8
    assert "simulated failure" in str(by_number[1].error)
    assert "nan" in str(by_number[2].error)
    assert "TrialTimeout" in str(by_number[3].error)
    assert by_number[5].state is TrialState.COMPLETE  # Ray retried it after the kill
    assert all(by_number[n].state is TrialState.COMPLETE for n in (0, 4, 6, 7))
    assert not ray.is_initialized()  # the executor stops the cluster it started


@pytest.mark.usefixtures("no_ray_running")
def test_a_node_lost_mid_study_costs_no_trial() -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker_node = cluster.add_node(num_cpus=2)
    try:
        ray.init(address=cluster.address)
        space = _space()
        removed: list[int] = []

        def remove_node_after_two(study: Study, trial: FrozenTrial) -> None:
            if len(study.trials) >= 3 and not removed:
                cluster.remove_node(worker_node)
                removed.append(trial.number)

        study = Study(space, RandomSearch(space), FaultyEstimator({}, seconds=0.5), seed=0)
        study.optimize(budget=Budget(trials=10), callbacks=[remove_node_after_two],
                       executor=RayExecutor(workers=3, address=cluster.address, max_retries=3))
        assert removed
        assert len(study.trials) == 10
        assert all(t.state is TrialState.COMPLETE for t in study.trials), \
            [t.error for t in study.trials]
    finally:
        ray.shutdown()
        cluster.shutdown()
