import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scope", ["blocks", "model"])
def test_gpu_benchmark_smoke_run_prints_every_measurement(scope):
    """benchmarks/models_gpu.py --smoke runs on CPU and prints a table with every measurement."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "models_gpu.py"), "--smoke",
                             "--compile-scope", scope], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("Genie models benchmark on")[1]
    for row in ("dynamics train eager", f"dynamics train compiled ({scope})", "generation tiny, no cache",
                "generation tiny, KV cache", "generation tiny, KV cache + CUDA graph"):
        assert row in table
    assert "failed" not in table
    assert "tokens/s" in table and "frames/s" in table
