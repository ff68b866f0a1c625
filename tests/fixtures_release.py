"""Test-only: two real ingest runs to build releases from (one Ray, one local site).

`ingest_runs` (session-scoped, registered in conftest.py so every module shares one) renders five short offline-world uploads (one off-topic),
serves them with three real SMB levels on the local video site, and ingests twice into two
folders: run "world" searches the platformer queries, run "mario" searches "mario" and
"cave" with a takedown list naming SMB level 1-3 (dropped at search time, never downloaded)
and the uploader of the "cave" video (whom the site's search feed does not name: dropped
right after download). Both runs find SMB levels 1-1 and 1-2, so a release of both must
deduplicate them; level 1-3 comes from the world run only.
"""

import dataclasses
import datetime as dt
import pathlib

import pytest

TAKEDOWN_AT_SEARCH = "smb-1-3"
TAKEDOWN_UPLOADER = "pixelrunner"  # uploads "Let's Play Castle Climber #14 - the cave levels"


@dataclasses.dataclass(frozen=True)
class IngestRuns:
    world: pathlib.Path
    mario: pathlib.Path
    takedowns: pathlib.Path  # the list the mario run honoured


def write_takedowns(path: pathlib.Path, entries: list[dict]) -> pathlib.Path:
    """A takedown TOML file from entries with video_id or uploader, reason and requested."""
    lines = []
    for entry in entries:
        lines.append("[[takedown]]")
        for key, value in entry.items():
            lines.append(f"{key} = {value.isoformat() if isinstance(value, dt.date) else repr(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(site, output: pathlib.Path, queries: tuple[str, ...], takedowns: str = ""):
    from jobs.ingest import RaySection, default_config, with_site
    from jobs.resources import WorkerResources
    from pipeline.download import DownloadConfig

    config = with_site(default_config(), site.url)
    download = DownloadConfig(socket_timeout_s=2.0, video_timeout_s=30.0, max_attempts=2, backoff_initial_s=0.01,
                              backoff_max_s=0.05, extractors=("generic",), rate_per_s=50.0)  # fmt: skip
    return dataclasses.replace(
        config, output_dir=str(output), progress=False, takedowns=takedowns, download=download,
        search=dataclasses.replace(config.search, queries=queries),
        ray=RaySection(num_cpus=2, object_store_mb=200, download=WorkerResources(workers=0, cpus_per_worker=0.0)),
    )  # fmt: skip


@pytest.fixture(scope="session")
def ingest_runs(tmp_path_factory, smb_dir) -> IngestRuns:
    import ray

    from jobs.ingest import run_ingest
    from world.corpus import CorpusConfig, generate_corpus
    from world.site import VideoSite
    from world.themes import DARK_THEMES, THEME_NAMES

    root = tmp_path_factory.mktemp("release_corpus")
    # the themes of before the dark ones, so that seed 5 still draws the pixelrunner's cave video
    light = tuple(name for name in THEME_NAMES if name not in DARK_THEMES)
    generate_corpus(CorpusConfig(seed=5, videos=5, offtopic=1, min_duration_s=10, max_duration_s=16, themes=light), root)
    smb = tmp_path_factory.mktemp("release_smb")
    for name in ("smb_1_1.mp4", "smb_1_2.mp4", "smb_1_3.mp4"):
        (smb / name).symlink_to(smb_dir / name)
    takedowns = write_takedowns(tmp_path_factory.mktemp("takedowns") / "search.toml", [
        {"video_id": TAKEDOWN_AT_SEARCH, "reason": "rights holder request", "requested": dt.date(2025, 3, 1)},
        {"uploader": TAKEDOWN_UPLOADER, "reason": "uploader opted out", "requested": dt.date(2025, 3, 2)}])  # fmt: skip
    world, mario = tmp_path_factory.mktemp("run_world"), tmp_path_factory.mktemp("run_mario")
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024**2, include_dashboard=False, log_to_driver=False)
    try:
        with VideoSite(root, smb_dir=smb) as site:
            run_ingest(_config(site, world, ("platformer speedrun", "playthrough", "level", "mario 1-1", "review")))
            run_ingest(_config(site, mario, ("mario", "cave"), str(takedowns)))
    finally:
        ray.shutdown()
    return IngestRuns(world, mario, takedowns)
