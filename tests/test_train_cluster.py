"""`genie train` on a simulated two-node Ray cluster (ray.cluster_utils.Cluster)."""

import dataclasses
import json
import pathlib

import pytest

from jobs.train import RunSection, ScalingSection, TrainJobConfig, fit
from train.loop import TrainConfig
from train.metrics import MetricsConfig
from train.optimizer import OptimConfig
from train.parallelize import ParallelConfig
from train.windows import DataConfig

pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_two_node_cluster_runs_one_worker_on_each_node(clip_shards, tmp_path):
    """With one CPU per node and two workers, each node hosts a rank, and the run trains to its last step."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 150 * 1024**2,
                                                           "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 1024**2)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        config = TrainJobConfig(
            run=RunSection(name="lam-two-nodes", storage_path=str(tmp_path), max_failures=0),
            train=TrainConfig(
                data=DataConfig(shards=(str(clip_shards),), window_frames=2, batch_size=1, loader_processes=0),
                optim=OptimConfig(max_steps=2, warmup_steps=1),
                parallel=ParallelConfig(mixed_precision="fp32"),
                metrics=dataclasses.replace(MetricsConfig(), checkpoint_every=2, tensorboard=False),
            ),
            scaling=ScalingSection(workers=2, cpus_per_worker=1),
        )
        result = fit("lam", config)
        nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    ranks = pathlib.Path(tmp_path) / "lam-two-nodes" / "logs" / "ranks"
    placed = [json.loads(open(ranks / f"rank{rank}.jsonl").readline())["node"] for rank in range(2)]
    assert len(nodes) == 2 and set(placed) == nodes
    assert result.metrics["step"] == 2
