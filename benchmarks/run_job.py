"""`genie run` timed as a user runs it, with its CPU-seconds and how loaded the machine was,
and its eval figures against the issue's targets.

    python benchmarks/run_job.py [--config jobs/configs/run_local.toml] [--output out/bench-run]

Wall time depends on what else the machine runs, so it also prints the job's CPU-seconds
(every process it started: Ray's workers included, counted by a cpuacct cgroup where this
machine lets one be made, else the reaped children's rusage, which misses Ray's workers) and
the machine's mean busy cores and load average over the run. The job's log goes to
<output>.log, its summary to <output>.json.
"""

import argparse
import json
import os
import pathlib
import re
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup/cpuacct")
TARGETS = {"tokenizer_psnr": 26.0, "delta_psnr_low": 0.0, "action_nmi": 0.5, "wall_s": 20 * 60}


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot (/proc/stat)."""
    fields = [int(v) for v in pathlib.Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class CpuAccount:
    """CPU-seconds of a process and everything it starts: a cpuacct cgroup of its own if one can
    be made, else the rusage of reaped children."""

    def __init__(self, name: str):
        self.group = CGROUP_ROOT / name
        try:
            self.group.mkdir(exist_ok=True)
            self.method = "cgroup"
        except OSError:
            self.method = "rusage"
        self._start = self._children()

    def add(self, pid: int) -> None:
        if self.method == "cgroup":
            (self.group / "cgroup.procs").write_text(str(pid))

    def seconds(self) -> float:
        if self.method == "cgroup":
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        return self._children() - self._start

    def close(self) -> None:
        """Remove the cgroup once Ray's last processes have left it (they exit just after the job)."""
        for _ in range(30 if self.method == "cgroup" else 0):
            try:
                self.group.rmdir()
                return
            except OSError:
                time.sleep(1)

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, default=ROOT / "jobs" / "configs" / "run_local.toml")
    parser.add_argument("--output", type=pathlib.Path, default=ROOT / "out" / "bench-run",
                        help="output_dir given to the job (the config's is replaced)")
    args = parser.parse_args()
    output = args.output.resolve()
    config_text = re.sub(r'^output_dir = .*$', f'output_dir = "{output}"', args.config.read_text(), flags=re.M)
    config = output.with_suffix(".toml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text)
    genie = pathlib.Path(sys.executable).parent / "genie"
    command = [str(genie), "run", "--config", str(config)]

    account = CpuAccount(f"genie-run-{os.getpid()}")
    load_before, (busy0, total0), started = os.getloadavg(), busy_jiffies(), time.monotonic()
    with open(output.with_suffix(".log"), "w") as log, open(output.with_suffix(".json"), "w") as summary_file:
        job = subprocess.Popen(command, stdout=summary_file, stderr=log, cwd=ROOT)
        account.add(job.pid)
        code = job.wait()
    wall = time.monotonic() - started
    cpu, (busy1, total1) = account.seconds(), busy_jiffies()
    account.close()
    cores = os.cpu_count() or 1
    machine_busy = (busy1 - busy0) / max(1, total1 - total0) * cores
    print(f"command: {' '.join(command)} (exit {code})")
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s ({account.method}); the machine: {cores} cores, "
          f"{machine_busy:.2f} busy on average during the run, of which this job {cpu / wall:.2f}; "
          f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    if code != 0:
        print(f"the job failed: see {output.with_suffix('.log')}")
        return 1
    evaluation = json.loads(output.with_suffix(".json").read_text())["train"]["eval"]
    report = json.loads((pathlib.Path(evaluation["report"]).parent / "eval.json").read_text())
    figures = {"tokenizer_psnr": evaluation["tokenizer_psnr"], "delta_psnr": evaluation["delta_psnr"],
               "delta_psnr_low": evaluation["delta_psnr_interval"][0],
               "delta_psnr_high": evaluation["delta_psnr_interval"][1],
               "action_nmi": report["actions"]["nmi"] if report["actions"] else None,
               "action_accuracy": report["actions"]["accuracy"] if report["actions"] else None,
               "next_frame_psnr": evaluation["next_frame_psnr"], "wall_s": round(wall), "cpu_s": round(cpu)}
    print(json.dumps(figures))
    for key, target in TARGETS.items():
        value = figures[key]
        met = value is not None and (value <= target if key == "wall_s" else value >= target if key != "delta_psnr_low"
                                     else value > target)
        print(f"  {key:<16} {value}  target {'<=' if key == 'wall_s' else '>' if key == 'delta_psnr_low' else '>='} "
              f"{target}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
