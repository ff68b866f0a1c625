"""A takedown list: source videos and uploaders that must not be in the data set.

A TOML file of `[[takedown]]` entries, each naming one video id or one uploader, why, and
when it was asked for:

    [[takedown]]
    video_id = "dQw4w9WgXcQ"
    reason = "copyright claim #1042"
    requested = 2025-03-01

    [[takedown]]
    uploader = "Some Channel"
    reason = "uploader opted out"
    requested = 2025-03-04

Ingest drops matching videos at search time (nothing is downloaded); `genie release` leaves
them out of a release, or removes them from an existing one. Video ids match exactly;
uploaders match ignoring case and surrounding space.
"""

import dataclasses
import datetime as dt
import pathlib

from schemas.config import ConfigError, from_dict, load


@dataclasses.dataclass(frozen=True)
class Takedown:
    """One entry: exactly one of video_id and uploader."""

    reason: str
    requested: dt.date
    video_id: str = ""
    uploader: str = ""

    def __post_init__(self) -> None:
        if bool(self.video_id) == bool(self.uploader):
            raise ConfigError("a takedown names exactly one of 'video_id' and 'uploader'")
        if not self.reason.strip():
            raise ConfigError("a takedown needs a 'reason'")

    @property
    def what(self) -> str:
        return f"video {self.video_id}" if self.video_id else f"uploader {self.uploader}"


@dataclasses.dataclass(frozen=True)
class TakedownList:
    """Every entry of a takedown file, in file order."""

    takedown: tuple[Takedown, ...] = ()

    def __post_init__(self) -> None:
        by_video = {entry.video_id: entry for entry in reversed(self.takedown) if entry.video_id}
        by_uploader = {_fold(entry.uploader): entry for entry in reversed(self.takedown) if entry.uploader}
        object.__setattr__(self, "_by_video", by_video)
        object.__setattr__(self, "_by_uploader", by_uploader)

    def match(self, video_id: str, uploader: str | None) -> Takedown | None:
        """The first entry that covers this video (by id, then by uploader), or None."""
        entry = self._by_video.get(video_id)
        if entry is None and uploader:
            entry = self._by_uploader.get(_fold(uploader))
        return entry

    def __bool__(self) -> bool:
        return bool(self.takedown)


def load_takedowns(path: str | pathlib.Path) -> TakedownList:
    """Read a takedown file; an empty path is an empty list."""
    if not str(path):
        return TakedownList()
    return load(TakedownList, path)


def takedowns_from_dicts(entries: list[dict]) -> TakedownList:
    """A list from plain entries (as stored in a release's provenance: dates as ISO strings)."""
    fixed = [{**entry, "requested": dt.date.fromisoformat(entry["requested"]) if isinstance(entry["requested"], str)
              else entry["requested"]} for entry in entries]  # fmt: skip
    return from_dict(TakedownList, {"takedown": fixed})


def takedown_dict(entry: Takedown) -> dict:
    """The JSON form of an entry."""
    return {"video_id": entry.video_id, "uploader": entry.uploader, "reason": entry.reason,
            "requested": entry.requested.isoformat()}  # fmt: skip


def _fold(name: str) -> str:
    return name.strip().casefold()
