"""Ingest throughput and memory: our job vs the peer recipe vs the decode floor.

    .venv/bin/python benchmarks/ingest.py                  # corpus, then (a), (b), (c) on it
    .venv/bin/python benchmarks/ingest.py --long-video     # also: 1 h of 1280x720 through a worker

All three run on the same files (an offline-world corpus, all on-topic so every file is
processed, plus ../shared/corpus/smb), in one run, measured as source-video seconds per
CPU-second (user + sys of every process involved):
  (a) `genie ingest` (its embedded default config with the heuristic scorer only, as in the
      earlier runs; `--learned` adds the model) searching, downloading from the local site,
      cutting and writing shards and lineage; the site itself runs outside the measurement
      (it stands for the internet);
  (b) ../shared/bench/peer_ingest.sh: PySceneDetect's CLI detect-adaptive split-video per
      file, then ffmpeg scale=160:90,fps=10 per scene;
  (c) ../shared/bench/decode_floor.sh: ffmpeg decoding every file once, one thread.
CPU is read from a cgroup (cpuacct) holding the run and all its descendants, Ray's daemons
and workers included; where no cgroup can be made, from RUSAGE_CHILDREN, which misses
processes that are not waited for (Ray's) and is reported as such.

--no-ray [--compare DIR ...] measures the job's stages (search, download, probe, decode, detect,
score, shards, lineage) in one process without Ray, for this checkout and for each other
checkout given (e.g. an earlier commit unpacked with `git archive`), alternating, plus (b)
and (c): what a code change costs per video, free of Ray's start-up (which a loaded machine
can stall past Ray's 30-second node start limit).

--learned MODEL runs (a) with the heuristic scorer and with heuristic+learned (that model),
alternating --rounds times: what the learned filter costs per source hour.

--long-video makes a one-hour 1280x720 30 fps video (one minute encoded, looped by stream
copy) and runs the processing worker's code on it and on its first minute, printing peak RSS
of the worker and of its ffmpeg: memory must not grow with length (target <= 1.5 GiB).
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
SMB = ROOT.parent / "shared" / "corpus" / "smb"
PYTHON = sys.executable
CGROUP = pathlib.Path("/sys/fs/cgroup/cpuacct")


def make_corpus(work: pathlib.Path, videos: int, min_s: float, max_s: float, seed: int) -> pathlib.Path:
    """The world corpus (all on-topic) plus the SMB clips, and a flat folder of every file."""
    from world.corpus import CorpusConfig, generate_corpus

    world = work / "world"
    if not (world / "catalog.json").is_file():
        generate_corpus(CorpusConfig(seed=seed, videos=videos, offtopic=0, min_duration_s=min_s, max_duration_s=max_s), world)
    flat = work / "all"
    flat.mkdir(exist_ok=True)
    for path in [*sorted((world / "videos").glob("*.mp4")), *sorted(SMB.glob("smb_*.mp4"))]:
        if not (flat / path.name).exists():
            (flat / path.name).symlink_to(path)
    return flat


def source_seconds(folder: pathlib.Path) -> float:
    total = 0.0
    for path in sorted(folder.glob("*.mp4")):
        command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
        total += float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return total


def measure(command: list[str], env: dict | None = None, stdout: pathlib.Path | None = None) -> tuple[float, float, str]:
    """(CPU seconds of the command and everything it starts, wall seconds, how CPU was read)."""
    group = CGROUP / f"genie-bench-{os.getpid()}-{time.monotonic_ns()}"
    try:
        group.mkdir()
    except OSError:
        group = None
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    join = (lambda: (group / "cgroup.procs").write_text(str(os.getpid()))) if group else None
    with open(stdout or os.devnull, "w") as output:
        subprocess.run(command, env=env, cwd=ROOT, check=True, preexec_fn=join, stdout=output, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - started
    if group is None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return cpu, wall, "RUSAGE_CHILDREN (misses processes not waited for)"
    for _ in range(300):  # Ray's daemons outlive the driver by a moment
        if not (group / "tasks").read_text().strip():
            break
        time.sleep(0.1)
    cpu = int((group / "cpuacct.usage").read_text()) / 1e9
    group.rmdir()
    return cpu, wall, "cgroup cpuacct (all descendants)"


def serve(world: pathlib.Path, with_smb: bool = True) -> tuple[subprocess.Popen, str]:
    command = [PYTHON, "-m", "world.cli", "serve", "--corpus", str(world), "--port", "0"]
    command += ["--smb", str(SMB)] if with_smb else []
    site = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = site.stdout.readline()
    return site, line.split(" at ", 1)[1].strip().rstrip("/")


def ingest(world: pathlib.Path, output: pathlib.Path, with_smb: bool = True, learned: pathlib.Path | None = None) -> dict:
    """`genie ingest` (embedded default config, with the heuristic scorer only or with the
    learned scorer too) against a site serving `world`: CPU and stats."""
    site, url = serve(world, with_smb)
    try:
        shutil.rmtree(output, ignore_errors=True)
        extra = ["--scorer", "heuristic+learned", "--learned-model", str(learned)] if learned else ["--scorer", "heuristic"]
        cpu, wall, method = measure([PYTHON, "-m", "jobs.ingest", "--site", url, "--output-dir", str(output), *extra])
    finally:
        site.terminate()
        site.wait()
    stats = json.loads((output / "stats.json").read_text())
    steps = sum(figures["cpu_s"] for figures in stats["throughput"].values())
    return {"cpu_s": cpu, "wall_s": wall, "method": method, "videos": stats["videos"], "clips": stats["clips"],
            "steps": stats["throughput"], "steps_cpu_s": steps}  # fmt: skip


def with_learned(work: pathlib.Path, model: pathlib.Path, rounds: int) -> None:
    """(a) with the heuristic only and with heuristic+learned, alternating: CPU per source hour."""
    seconds = source_seconds(work / "all")
    runs: dict[str, list[dict]] = {"heuristic": [], "heuristic+learned": []}
    for _ in range(rounds):
        for name in runs:
            runs[name].append(ingest(work / "world", work / f"ingest_{name}", learned=model if "learned" in name else None))
    for name, results in runs.items():
        best = min(results, key=lambda result: result["cpu_s"])
        learned = best["steps"].get("learned", {}).get("cpu_s", 0.0)
        each = ", ".join(f"{result['cpu_s']:.1f}" for result in results)
        print(f"(a) {name:<18} CPU {best['cpu_s']:6.1f} s (best of {len(results)}: {each})  "
              f"{best['cpu_s'] / seconds * 3600:6.1f} CPU-s per source hour, "
              f"learned scoring {learned:.2f} CPU-s; clips kept {best['clips']['kept']}/{best['clips']['total']}")  # fmt: skip
    base, with_model = (min(result["cpu_s"] for result in runs[name]) for name in runs)
    print(f"learned filter: x{with_model / base:.2f} the CPU of the heuristic-only job on this corpus")


def fixed_cost(work: pathlib.Path) -> float:
    """CPU the job spends whatever its input (Python and Ray start-up, actors, shutdown): the job
    run on one 2-second video, less what its steps spent on that video."""
    from world.corpus import CorpusConfig, generate_corpus

    world = work / "one_video"
    if not (world / "catalog.json").is_file():
        generate_corpus(CorpusConfig(seed=1, videos=1, offtopic=0, min_duration_s=2, max_duration_s=2), world)
    run = ingest(world, work / "one_video_out", with_smb=False)
    return run["cpu_s"] - run["steps_cpu_s"]


def run_three(work: pathlib.Path, flat: pathlib.Path, ours_only: bool = False) -> dict:
    seconds = source_seconds(flat)
    results = {"source_s": seconds, "files": len(list(flat.glob("*.mp4")))}
    results["ours"] = ingest(work / "world", work / "ingest_out")
    results["ours"]["fixed_cpu_s"] = fixed_cost(work)
    results["ours"]["steady_source_s_per_cpu_s"] = seconds / (results["ours"]["cpu_s"] - results["ours"]["fixed_cpu_s"])
    env = {**os.environ, "PATH": f"{pathlib.Path(PYTHON).parent}:{os.environ['PATH']}"}
    if not ours_only:
        cpu, wall, method = measure(["bash", str(BENCH / "peer_ingest.sh"), str(flat), str(work / "peer_out")], env)
        results["peer"] = {"cpu_s": cpu, "wall_s": wall, "method": method}
        cpu, wall, method = measure(["bash", str(BENCH / "decode_floor.sh"), str(flat)])
        results["floor"] = {"cpu_s": cpu, "wall_s": wall, "method": method}
    for name in ("ours", "peer", "floor"):
        if name in results:
            results[name]["source_s_per_cpu_s"] = seconds / results[name]["cpu_s"]
    return results


def print_three(results: dict) -> None:
    seconds = results["source_s"]
    print(f"corpus: {results['files']} files, {seconds:.0f} s of video ({seconds / 60:.1f} min)")
    for name, label in (("ours", "(a) genie ingest"), ("peer", "(b) peer recipe"), ("floor", "(c) decode floor")):
        if name not in results:
            continue
        figures = results[name]
        print(f"{label:<20} CPU {figures['cpu_s']:8.1f} s  wall {figures['wall_s']:7.1f} s  "
              f"{figures['source_s_per_cpu_s']:7.1f} source-s/CPU-s   [{figures['method']}]")  # fmt: skip
    steady, fixed = results["ours"]["steady_source_s_per_cpu_s"], results["ours"]["fixed_cpu_s"]
    print(f"(a) without its fixed start-up cost ({fixed:.1f} CPU-s, measured on a one-video run): "
          f"{steady:.1f} source-s/CPU-s")  # fmt: skip
    ours = results["ours"]
    rest = ours["cpu_s"] - fixed - ours["steps_cpu_s"]
    print(f"(a) = fixed {fixed:.1f} + steps inside the workers {ours['steps_cpu_s']:.1f} (ffmpeg included) "
          f"+ the rest {rest:.1f} CPU-s (Ray's per-video and per-second costs, workers' start beyond one)")  # fmt: skip
    if "peer" in results:
        ours, peer, floor = (results[name]["source_s_per_cpu_s"] for name in ("ours", "peer", "floor"))
        print(f"end to end: (a)/(b) = {ours / peer:.1f}x (target >= 8);  (c)/(a) = {floor / ours:.2f}x (target <= 2.5)")
        print(f"steady:     (a)/(b) = {steady / peer:.1f}x;  (c)/(a) = {floor / steady:.2f}x")
    videos, clips = results["ours"]["videos"], results["ours"]["clips"]
    print(f"ingest: {videos['ok']}/{videos['total']} videos ok, {clips['kept']}/{clips['total']} clips kept")
    print("ingest per step (inside the workers): " + ", ".join(
        f"{step} {figures['cpu_s']:.2f} CPU-s" for step, figures in results["ours"]["steps"].items()))  # fmt: skip


def stages(url: str, output: str, code: str) -> None:
    """The job's stages in this process, with the pipeline code found in `code`; prints counts."""
    sys.path.insert(0, code)
    from jobs.ingest import default_config, with_site
    from pipeline import lineage
    from pipeline.download import Download
    from pipeline.keywords import KeywordFilter
    from pipeline.process_video import ProcessVideo
    from pipeline.rows import is_ok, to_batch, to_rows
    from pipeline.search import search

    config = with_site(default_config(), url)
    found = search(config.search)
    judged = to_rows(KeywordFilter(config.search.rules)(to_batch(found.videos, columns=("video_id",))))
    download = Download(config.download, pathlib.Path(output) / "downloads")
    process = ProcessVideo(config.split, config.quality, config.shards, output, "bench")
    rows = [to_rows(process(download(to_batch([row]))))[0] for row in judged if is_ok(row)]
    started = time.process_time()
    videos, clips = lineage.consolidate(output)
    steps = {name: round(sum(row["timings"].get(name, 0.0) for row in rows), 2) for name in rows[0]["timings"]}
    steps["consolidate_s"] = round(time.process_time() - started, 2)
    print(json.dumps({"videos": len(rows), "ok": sum(is_ok(row) for row in rows), "clips": clips.num_rows, **steps}))


def no_ray(work: pathlib.Path, flat: pathlib.Path, codes: list[pathlib.Path], rounds: int, ours_only: bool) -> None:
    seconds = source_seconds(flat)
    print(f"corpus: {len(list(flat.glob('*.mp4')))} files, {seconds:.0f} s of video; stages in one process, no Ray")
    cpu: dict[str, list[float]] = {str(code): [] for code in codes}
    for _ in range(rounds):
        for code in codes:
            site, url = serve(work / "world")
            try:
                output = work / "stages_out"
                shutil.rmtree(output, ignore_errors=True)
                spent, _, method = measure([PYTHON, __file__, "--stages", url, str(output), str(code)],
                                           stdout=work / "stages.json")
            finally:
                site.terminate()
                site.wait()
            cpu[str(code)].append(spent)
            print(f"  {code}: {spent:.1f} CPU-s  {seconds / spent:.1f} source-s/CPU-s  [{method}]  "
                  f"{(work / 'stages.json').read_text().strip()}", flush=True)
    if not ours_only:
        env = {**os.environ, "PATH": f"{pathlib.Path(PYTHON).parent}:{os.environ['PATH']}"}
        peer, _, _ = measure(["bash", str(BENCH / "peer_ingest.sh"), str(flat), str(work / "peer_out")], env)
        floor, _, _ = measure(["bash", str(BENCH / "decode_floor.sh"), str(flat)])
        print(f"(b) peer recipe {peer:.1f} CPU-s {seconds / peer:.1f} source-s/CPU-s; (c) decode floor {floor:.1f} CPU-s")
    for code, values in cpu.items():
        best = min(values)
        ratios = f";  vs (b) {peer / best:.1f}x, (c)/it {best / floor:.2f}x" if not ours_only else ""
        print(f"{code}: best {best:.1f} CPU-s of {len(values)}, {seconds / best:.1f} source-s/CPU-s{ratios}")


def worker_rss(path: str, output: str) -> None:
    """Run the processing worker's code on one file; print its and its children's peak RSS."""
    sys.path.insert(0, str(ROOT))
    from pipeline.process_video import ProcessVideo, SplitConfig
    from pipeline.quality import QualityConfig
    from pipeline.shards import ShardConfig
    from schemas.manifest import VIDEO_SCHEMA

    row = {name: None for name in VIDEO_SCHEMA.names}
    row.update(video_id=pathlib.Path(path).stem, url="http://bench/x", queries=["bench"], status="ok", stage="download", path=path)
    started = time.monotonic()
    video = ProcessVideo(SplitConfig(), QualityConfig(), ShardConfig(), output, "bench").process(row)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(json.dumps({"status": video["status"], "reason": video["reason"], "source_s": video["source_s"],
                      "n_clips": video["n_clips"], "worker_peak_gib": own, "ffmpeg_peak_gib": children,
                      "wall_s": time.monotonic() - started}))  # fmt: skip


def long_video(work: pathlib.Path) -> None:
    minute, hour = work / "minute_720p.mp4", work / "hour_720p.mp4"
    if not hour.exists():
        encode = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=60",
                  "-c:v", "libx264", "-preset", "ultrafast", "-g", "300", "-pix_fmt", "yuv420p", str(minute)]  # fmt: skip
        subprocess.run(encode, check=True)
        loop = ["ffmpeg", "-v", "error", "-y", "-stream_loop", "59", "-i", str(minute), "-c", "copy", str(hour)]
        subprocess.run(loop, check=True)
    for path in (minute, hour):
        output = work / f"rss_{path.stem}"
        shutil.rmtree(output, ignore_errors=True)
        result = subprocess.run([PYTHON, __file__, "--worker-rss", str(path), str(output)], capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout)
        print(f"{path.name}: {figures['source_s']:.0f} s decoded, {figures['n_clips']} clips, "
              f"worker peak RSS {figures['worker_peak_gib']:.3f} GiB, ffmpeg peak RSS {figures['ffmpeg_peak_gib']:.3f} GiB, "
              f"wall {figures['wall_s']:.0f} s ({figures['status']})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=pathlib.Path, help="working folder (kept; default: a temporary one)")
    parser.add_argument("--world-videos", type=int, default=20, help="offline-world uploads in the corpus")
    parser.add_argument("--world-min-s", type=float, default=40.0)
    parser.add_argument("--world-max-s", type=float, default=80.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long-video", action="store_true", help="also run the one-hour 1280x720 memory check")
    parser.add_argument("--long-video-only", action="store_true", help="only the memory check")
    parser.add_argument("--ours-only", action="store_true", help="skip (b) and (c), for quick iterations")
    parser.add_argument("--no-ray", action="store_true", help="the job's stages in one process, per checkout (see above)")
    parser.add_argument("--compare", type=pathlib.Path, nargs="*", default=[], help="other checkouts for --no-ray")
    parser.add_argument("--rounds", type=int, default=2, help="--no-ray: runs per checkout, alternating")
    parser.add_argument("--learned", type=pathlib.Path, help="a quality model folder: (a) with and without it, alternating")
    parser.add_argument("--worker-rss", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--stages", nargs=3, metavar=("URL", "OUT", "CODE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker_rss:
        worker_rss(*options.worker_rss)
        return 0
    if options.stages:
        stages(*options.stages)
        return 0
    work = options.work or pathlib.Path(tempfile.mkdtemp(prefix="genie-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}")
    if options.learned:
        make_corpus(work, options.world_videos, options.world_min_s, options.world_max_s, options.seed)
        with_learned(work, options.learned.resolve(), options.rounds)
        return 0
    if options.no_ray:
        flat = make_corpus(work, options.world_videos, options.world_min_s, options.world_max_s, options.seed)
        no_ray(work, flat, [ROOT, *(path.resolve() for path in options.compare)], options.rounds, options.ours_only)
        return 0
    if not options.long_video_only:
        flat = make_corpus(work, options.world_videos, options.world_min_s, options.world_max_s, options.seed)
        results = run_three(work, flat, options.ours_only)
        (work / "results.json").write_text(json.dumps(results, indent=1))
        print_three(results)
    if options.long_video or options.long_video_only:
        long_video(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
