"""The one shape of a Ray worker pool in every job config: how many workers, what each reserves.

Ingest (`[ray.download]`, `[ray.process]`), tokenize (`[resources]`) and train (`[scaling]`,
which adds its placement) all describe their workers with these three keys:

    workers = 2            # processes (actors, tasks or training ranks)
    cpus_per_worker = 1.0  # Ray's num_cpus of each
    gpus_per_worker = 0.0  # Ray's num_gpus of each; 0 runs on CPU
"""

import dataclasses

from schemas.config import at_least


@dataclasses.dataclass(frozen=True)
class WorkerResources:
    """A pool of Ray workers: how many, and the CPUs and GPUs each reserves."""

    workers: int = 1  # what 0 means is the job's to say (ingest: one per CPU, or no pool)
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # > 0: the workers run on GPUs

    def __post_init__(self):
        at_least(self, workers=0, cpus_per_worker=0.0, gpus_per_worker=0.0)

    @property
    def use_gpu(self) -> bool:
        return self.gpus_per_worker > 0

    def ray_options(self) -> dict:
        """num_cpus / num_gpus as Ray's task, actor and map options take them."""
        return {"num_cpus": self.cpus_per_worker, "num_gpus": self.gpus_per_worker}
