"""benchmarks/fsdp_step_gpu.py --smoke: the GPU benchmark's whole path on 2 CPU ranks."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_run_trains_and_reports_step_time_and_plan():
    """The smoke run builds the model sharded from meta, takes its steps and prints one JSON line of figures."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fsdp_step_gpu.py"), "--smoke", "--steps", "1",
                           "--warmup", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ranks"] == 2 and result["parameters"] > 0 and result["step_s"] > 0
    assert len(result["losses"]) == 2 and result["planned_memory_gb"] > 0
