"""`genie verify DIR`: check a release; exit 1 naming every problem, 0 when it is intact.

    genie verify out/release/v1             # checksums, samples vs. manifest, schemas, split rule
    genie verify out/release/v1 --quick     # PNG headers instead of decoding every frame

Checks are release/verify.py's; shards are checked in this process, or as Ray tasks when
the release is larger than `--local-max-bytes` (or with `--ray ray`).
"""

import argparse
import json
import pathlib
import sys

from jobs.release import RaySection, mapper, progress_bar
from release.verify import verify_release
from schemas.release import INDEX_FILE


def verify(root: str, check_frames: bool = True, ray_section: RaySection = RaySection(), show_progress: bool = True) -> list[str]:
    """Every problem of the release at `root` (empty when it verifies)."""
    try:
        total = sum(entry["bytes"] for entry in json.loads((pathlib.Path(root) / INDEX_FILE).read_text())["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        total = 0  # verify_release names what is wrong with the index
    map_ordered, shutdown = mapper(ray_section, total)
    bar, update = progress_bar(total, "verify") if show_progress else (None, None)
    try:
        return verify_release(root, check_frames, map_ordered, update)
    finally:
        shutdown()
        if bar is not None:
            bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("release", help="the release folder")
    parser.add_argument("--quick", action="store_true", help="check PNG headers instead of decoding every frame")
    parser.add_argument("--ray", choices=("auto", "local", "ray"), default="auto", help="where shard checks run")
    parser.add_argument("--local-max-bytes", type=int, default=RaySection.local_max_bytes,
                        help="with --ray auto: releases up to this size are checked in this process")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    options = parser.parse_args(argv)
    ray_section = RaySection(mode=options.ray, local_max_bytes=options.local_max_bytes)
    problems = verify(options.release, not options.quick, ray_section, not options.no_progress)
    for problem in problems:
        print(problem)
    if problems:
        print(f"genie verify: {options.release}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"genie verify: {options.release}: OK", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from jobs.verify import main as module_main

    sys.exit(module_main())
