"""A real Ray cluster on this machine started with the `ray` CLI, as cluster users start one.

`ray start --head` and `ray start --address` with every port chosen free on 127.0.0.1 and a
temp dir of its own, so clusters other people run on the same machine are never touched
(nor their default ports 6379 / 8265). `ray stop` would stop every Ray process on the
machine, so stopping ends only the process trees this cluster started, by their ids.
"""

import contextlib
import os
import pathlib
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import psutil

RAY = str(pathlib.Path(sys.executable).with_name("ray"))


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 now, from a random spot in 20000-59000."""
    ports: list[int] = []
    candidate = random.randrange(20000, 59000)
    while len(ports) < count:
        candidate += 1
        if _free(candidate):
            ports.append(candidate)
    return ports


def free_range(width: int) -> tuple[int, int]:
    """A run of `width` consecutive free ports (for Ray's worker processes)."""
    while True:
        start = random.randrange(20000, 59000 - width)
        if all(_free(port) for port in range(start, start + width)):
            return start, start + width - 1


def _node_ports() -> list[str]:
    node_manager, object_manager, agent_listen, agent_grpc, runtime_env, metrics = free_ports(6)
    low, high = free_range(40)
    return ["--node-ip-address", "127.0.0.1", "--node-manager-port", str(node_manager),
            "--object-manager-port", str(object_manager), "--dashboard-agent-listen-port", str(agent_listen),
            "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port", str(runtime_env),
            "--metrics-export-port", str(metrics), "--min-worker-port", str(low), "--max-worker-port", str(high)]


class RayCluster:
    """A head and worker nodes started by `ray start` (see module doc); its dashboard address for `ray job`."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        self.gcs_port, self.dashboard_port, self.client_port = free_ports(3)
        self._roots: list[int] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start_head(self, num_cpus: int, object_store_bytes: int) -> None:
        self._ray_start(["--head", "--port", str(self.gcs_port), "--ray-client-server-port", str(self.client_port),
                         "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                         "--dashboard-port", str(self.dashboard_port), "--temp-dir", self.temp_dir,
                         "--num-cpus", str(num_cpus), "--object-store-memory", str(object_store_bytes)])

    def add_worker(self, num_cpus: int, object_store_bytes: int) -> None:
        self._ray_start(["--address", self.address, "--num-cpus", str(num_cpus),
                         "--object-store-memory", str(object_store_bytes)])

    def _ray_start(self, args: list[str], attempts: int = 3) -> None:
        """`ray start ARGS`; retried when the node times out starting. The raylet gives the
        dashboard agent a fixed 15 s to write its port file (ray-project/ray#65983), which a
        machine under heavy load can miss; what the failed attempt left running is ended first."""
        for attempt in range(attempts):
            before = set(psutil.pids())
            try:
                done = subprocess.run([RAY, "start", *args, *_node_ports(), "--disable-usage-stats"], env=self.env,
                                      capture_output=True, text=True, timeout=300)
            finally:
                # `ray start` daemonises gcs_server / raylet / dashboard: remember what it left running
                started = [pid for pid in set(psutil.pids()) - before if self._ours(pid)]
            if done.returncode == 0:
                self._roots.extend(started)
                return
            _end([process for pid in started for process in _tree(pid)])
            if attempt == attempts - 1:
                raise RuntimeError(f"ray start {' '.join(args[:2])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def _ours(self, pid: int) -> bool:
        """Whether the process runs for this cluster: its command line names our temp dir."""
        with contextlib.suppress(psutil.Error):
            return self.temp_dir in " ".join(psutil.Process(pid).cmdline())
        return False

    def processes(self) -> list[psutil.Process]:
        """Every process this cluster started, and their children (workers, job drivers)."""
        roots = set(self._roots) | {pid for pid in psutil.pids() if self._ours(pid)}
        found = {process.pid: process for pid in roots for process in _tree(pid)}
        return list(found.values())

    def stop(self) -> None:
        """End this cluster's processes and remove its temp dir."""
        _end(self.processes())
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def job(self, *args: str, timeout: float = 120) -> str:
        """What `ray job ARGS --address <dashboard>` prints (stdout, then its log lines on stderr)."""
        done = subprocess.run([RAY, "job", args[0], "--address", self.dashboard, *args[1:]], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"ray job {args[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout + done.stderr

    def wait_for_job(self, submission_id: str, timeout_s: float) -> str:
        """Poll `ray job status` until the job ends; its final status (SUCCEEDED, FAILED, STOPPED)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.job("status", submission_id)  # e.g. "Job 'x' succeeded" once it has ended
            final = re.search(rf"Job '{re.escape(submission_id)}' (succeeded|failed|stopped)", status, re.IGNORECASE)
            if final:
                return final.group(1).upper()
            time.sleep(2)
        return "TIMEOUT"


def _tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    return []


def _end(processes: list[psutil.Process]) -> None:
    """SIGTERM these processes (by id), then SIGKILL those still alive after 10 s."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def ray_cluster(workers: int = 1, cpus_per_node: int = 1, object_store_bytes: int = 100 * 2**20) -> Iterator[RayCluster]:
    """A head and `workers` worker nodes, always stopped at the end (also when starting fails)."""
    # Token authentication on, with a token of this cluster's own (not ~/.ray/auth_token,
    # which other clusters on the machine may have made): every node and `ray job` call gets it.
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    cluster = RayCluster(env)
    try:
        cluster.start_head(cpus_per_node, object_store_bytes)
        for _ in range(workers):
            cluster.add_worker(cpus_per_node, object_store_bytes)
        yield cluster
    finally:
        cluster.stop()
