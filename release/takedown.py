"""A new release version made from an old one minus a takedown list.

Only the shards that held a removed clip are rewritten (their other samples copied in the
same order); every other shard is copied byte for byte, its sha256 checked against the old
index on the way, so the new version's unaffected shards are provably the old ones. A shard
left empty is dropped from the index. Splits, shard names and clip order stay as they were;
the card and provenance record what was removed, when and why.
"""

import dataclasses
import json
import os
import pathlib
import shutil

import pyarrow.parquet as pq

from release.build import MapOrdered, local_map
from release.card import write_card
from release.shard_io import ShardWriter, file_digest, iter_samples
from release.writing import ReleaseWriter, staged_release, takedown_record
from schemas.release import CLIPS_FILE, INDEX_FILE, PROVENANCE_FILE, VIDEOS_FILE, validate_index
from schemas.takedowns import TakedownList, takedown_dict

class BaseReleaseError(ValueError):
    """The release a takedown version is made from is not intact."""


@dataclasses.dataclass(frozen=True)
class ShardChange:
    """One shard of the base release: copy it, or rewrite it without `removed` clip ids."""

    entry: dict
    rows: list[dict]
    removed: frozenset[str]


def apply_shard_change(change: ShardChange, base: str, out: str) -> dict:
    """Copy or rewrite one shard; its new index entry (None if nothing is left) and rows."""
    name = change.entry["name"]
    source, target = pathlib.Path(base) / name, pathlib.Path(out) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not change.removed:
        temporary = target.with_name(f".tmp-{target.name}")
        shutil.copyfile(source, temporary)
        with open(temporary, "rb") as file:
            size, sha256 = file_digest(file)
        if (size, sha256) != (change.entry["bytes"], change.entry["sha256"]):
            temporary.unlink()
            raise BaseReleaseError(f"{base}/{name} does not match its index (run genie verify on {base})")
        os.replace(temporary, target)
        return {"entry": change.entry, "rows": change.rows}
    kept_rows = [row for row in change.rows if row["clip_id"] not in change.removed]
    if not kept_rows:
        return {"entry": None, "rows": []}
    by_id = {row["clip_id"]: row for row in kept_rows}
    rows = []
    with open(source, "rb") as file, ShardWriter(target) as writer:
        for sample, _, _ in iter_samples(file, name):
            if sample["__key__"] not in by_id:
                continue
            offset, size = writer.write(sample)
            rows.append({**by_id[sample["__key__"]], "shard_index": len(rows), "shard_offset": offset, "sample_bytes": size})
        if len(rows) != len(kept_rows):
            raise BaseReleaseError(f"{base}/{name} holds {len(rows)} of its {len(kept_rows)} remaining clips (run genie verify)")
        size, sha256 = writer.close()
    return {"entry": {**change.entry, "bytes": size, "sha256": sha256, "clips": len(rows)}, "rows": rows}


class _Apply:
    def __init__(self, base: str, out: str) -> None:
        self.base, self.out = base, out

    def __call__(self, change: ShardChange) -> dict:
        return apply_shard_change(change, self.base, self.out)


def remove_takedowns(base: str | os.PathLike, out: str | os.PathLike, version: str, takedowns: TakedownList,
                     map_ordered: MapOrdered = local_map, progress=None) -> dict:
    """Make release `version` in `out` from the release in `base` minus `takedowns`; its index."""
    base, out = pathlib.Path(base), pathlib.Path(out)
    index = json.loads((base / INDEX_FILE).read_text())
    validate_index(index)
    provenance = json.loads((base / PROVENANCE_FILE).read_text())
    videos = pq.read_table(base / VIDEOS_FILE).to_pylist()
    hit = {}
    for video in videos:
        entry = takedowns.match(video["video_id"], video["uploader"])
        if entry is not None:
            hit[video["video_id"]] = takedown_dict(entry)
    with staged_release(out) as working:
        writer = ReleaseWriter(working)
        for result in map_ordered(_Apply(str(base), str(working)), _changes(base, index, hit)):
            writer.add_shard(result["entry"], result["rows"])
            if progress is not None:
                progress(result)
        records = []
        for entry in map(takedown_dict, takedowns.takedown):
            removed = [video for video in videos if hit.get(video["video_id"]) == entry]
            records.append(takedown_record(entry, removed, version, applied_by="takedown"))
        new_provenance = {
            **provenance,
            "release": {**provenance["release"], "version": version, "built_from": f"version {index['version']} minus takedowns"},
            "takedowns": [*provenance["takedowns"], *records],
            "history": [*provenance.get("history", []), {"version": index["version"], "created_at": index["created_at"]}],
        }  # fmt: skip
        new_index = writer.finish(index["name"], version, index["seed"], index["split_fractions"], videos, new_provenance,
                                  based_on=index["version"])  # fmt: skip
        write_card(working)
    return new_index


def _changes(base: pathlib.Path, index: dict, hit: dict[str, dict]):
    """One ShardChange per shard of the base index, streaming its manifest shard by shard."""
    entries = {entry["name"]: entry for entry in index["shards"]}
    current, rows = None, []
    for batch in pq.ParquetFile(base / CLIPS_FILE).iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            if row["shard"] != current:
                if current is not None:
                    yield _change(_entry(entries, current, base), rows, hit)
                current, rows = row["shard"], []
            rows.append(row)
    if current is not None:
        yield _change(_entry(entries, current, base), rows, hit)
    if entries:
        raise BaseReleaseError(f"{base}: shard {next(iter(entries))} is in the index but has no clips in the manifest")


def _entry(entries: dict[str, dict], shard: str, base: pathlib.Path) -> dict:
    if shard not in entries:
        raise BaseReleaseError(f"{base}: the manifest's clips of {shard} are not together, or the index lacks it (run genie verify)")
    return entries.pop(shard)


def _change(entry: dict, rows: list[dict], hit: dict[str, dict]) -> ShardChange:
    rows = sorted(rows, key=lambda row: row["shard_index"])
    return ShardChange(entry, rows, frozenset(row["clip_id"] for row in rows if row["video_id"] in hit))
