"""`genie run`: the main job end to end on its embedded default, with nothing from outside.

    genie run                      # jobs/configs/run_local.toml: offline world, local Ray, out/run
    genie run --config FILE

Steps, each skipped when its output is already there (so a rerun resumes):
1. render the offline world's corpus of uploads (world/corpus.py);
2. serve it, with the real footage in ../shared/corpus/smb when present, on the local video
   site (world/site.py);
3. ingest: keyword search -> yt-dlp download -> clips -> WebDataset shards + lineage
   (jobs/ingest.py), exactly as against a real site.
"""

import argparse
import dataclasses
import importlib.resources
import json
import pathlib
import sys

from schemas.config import load
from world.corpus import CorpusConfig

DEFAULT_CONFIG = "run_local.toml"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The main job: where it writes, how big a world it renders, which ingest it runs."""

    # Everything the job writes goes below this folder.
    output_dir: str = "out/run"
    # The offline world's corpus of uploads.
    corpus: CorpusConfig = CorpusConfig()
    # Real footage the site serves beside the corpus ("" = none); relative to the repo root.
    smb_dir: str = "../shared/corpus/smb"
    # The ingest job's config (TOML); "" = its embedded default. Its search is pointed at the
    # site this job starts, and its output_dir at <output_dir>/ingest.
    ingest_config: str = ""


def default_config() -> RunConfig:
    with importlib.resources.as_file(importlib.resources.files("jobs") / "configs" / DEFAULT_CONFIG) as path:
        return load(RunConfig, path)


def _render_corpus(config: RunConfig, corpus_dir: pathlib.Path) -> None:
    from world.corpus import generate_corpus

    if (corpus_dir / "catalog.json").exists():
        print(f"[1/3] corpus: {corpus_dir} exists, kept", file=sys.stderr)
        return
    print(f"[1/3] corpus: rendering {config.corpus.videos} uploads into {corpus_dir}", file=sys.stderr)
    generate_corpus(config.corpus, corpus_dir,
                    progress=lambda n, total, entry: print(f"      {n}/{total} {entry['title']}", file=sys.stderr))


def _smb_dir(config: RunConfig) -> pathlib.Path | None:
    if not config.smb_dir:
        return None
    path = pathlib.Path(config.smb_dir)
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_dir():
        print(f"      real footage not found at {path}: serving the generated corpus only", file=sys.stderr)
        return None
    return path


def run(config: RunConfig) -> dict:
    """Run every step; returns a summary (also printed as JSON by main)."""
    from jobs import ingest
    from world.site import VideoSite

    output = pathlib.Path(config.output_dir)
    corpus_dir = output / "corpus"
    _render_corpus(config, corpus_dir)

    with VideoSite(corpus_dir, smb_dir=_smb_dir(config)) as site:
        print(f"[2/3] site: serving {len(site.video_ids())} videos at {site.url}", file=sys.stderr)
        ingest_config = load(ingest.IngestConfig, config.ingest_config) if config.ingest_config else ingest.default_config()
        ingest_config = dataclasses.replace(ingest.with_site(ingest_config, site.url), output_dir=str(output / "ingest"))
        print(f"[3/3] ingest: searching {site.url} and writing shards to {ingest_config.output_dir}", file=sys.stderr)
        stats = ingest.run_ingest(ingest_config)
    return {"output_dir": str(output), "ingest": {"videos": stats["videos"], "clips": stats["clips"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, help=f"job config (TOML); default: the embedded {DEFAULT_CONFIG}")
    options = parser.parse_args(argv)
    config = load(RunConfig, options.config) if options.config else default_config()
    print(json.dumps(run(config), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
