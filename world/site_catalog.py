"""What the local video site serves: one record per video, from the corpus and the SMB footage.

Records come from `<corpus_dir>/catalog.json` (the shared corpus contract) and, optionally,
from the real SMB clips in a folder of `smb_W_L.mp4` files. Truth sidecars are never read.
"""

import dataclasses
import functools
import json
import pathlib
import re
import subprocess

VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SMB_FILE = re.compile(r"smb_(\d+)_(\d+)\.mp4")
_WORD = re.compile(r"[a-z0-9]+")

SMB_UPLOADER = "Viet Nguyen (uvipen)"
SMB_LICENSE = "MIT"
SMB_SOURCE = "https://github.com/uvipen/Super-mario-bros-PPO-pytorch"


class CatalogError(ValueError):
    """A catalog or footage folder that the site cannot serve safely."""


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """The public metadata of one served video and the local file behind it."""

    id: str
    path: pathlib.Path
    title: str
    description: str
    uploader: str
    license: str
    duration_s: float
    upload_date: str | None  # "YYYYMMDD" when known
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    def words(self) -> frozenset[str]:
        """The lower-case words of title and description, the site's search index."""
        return frozenset(_WORD.findall(f"{self.title} {self.description}".lower()))


def load_corpus(corpus_dir: str | pathlib.Path) -> list[VideoRecord]:
    """The videos listed in `<corpus_dir>/catalog.json`, in catalog order.

    Raises CatalogError on a malformed catalog, a bad id, a duplicate id, or a `file` that
    points outside `<corpus_dir>/videos/` or does not exist.
    """
    root = pathlib.Path(corpus_dir).resolve()
    catalog_path = root / "catalog.json"
    try:
        catalog = json.loads(catalog_path.read_text())
        entries = catalog["videos"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CatalogError(f"cannot read {catalog_path}: {error!r}") from None
    if not isinstance(entries, list):
        raise CatalogError(f"{catalog_path}: 'videos' must be a list")
    records = [_corpus_record(root, entry, index) for index, entry in enumerate(entries)]
    check_unique(records, str(catalog_path))
    return records


def _corpus_record(root: pathlib.Path, entry: object, index: int) -> VideoRecord:
    where = f"catalog.json videos[{index}]"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected an object")
    try:
        video_id = entry["id"]
        if not isinstance(video_id, str) or not VIDEO_ID.fullmatch(video_id):
            raise CatalogError(f"{where}: bad id {video_id!r} (want [A-Za-z0-9_-]{{1,64}})")
        videos_dir = root / "videos"
        path = (root / entry["file"]).resolve()
        if not path.is_relative_to(videos_dir) or path.suffix != ".mp4":
            raise CatalogError(f"{where}: file {entry['file']!r} is not an .mp4 under videos/")
        if not path.is_file():
            raise CatalogError(f"{where}: file {entry['file']!r} does not exist")
        return VideoRecord(
            id=video_id,
            path=path,
            title=str(entry["title"]),
            description=str(entry["description"]),
            uploader=str(entry["uploader"]),
            license=str(entry["license"]),
            duration_s=float(entry["duration_s"]),
            upload_date=_check_date(entry.get("upload_date"), where),
            width=entry.get("width"),
            height=entry.get("height"),
            fps=entry.get("fps"),
        )
    except KeyError as error:
        raise CatalogError(f"{where}: missing field {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        if isinstance(error, CatalogError):
            raise
        raise CatalogError(f"{where}: {error}") from None


def _check_date(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{8}", value):
        raise CatalogError(f"{where}: upload_date {value!r} is not YYYYMMDD")
    return value


def load_smb(smb_dir: str | pathlib.Path) -> list[VideoRecord]:
    """The real SMB clips (`smb_W_L.mp4`) as records with ids like "smb-1-1", by level."""
    folder = pathlib.Path(smb_dir).resolve()
    if not folder.is_dir():
        raise CatalogError(f"SMB footage folder {folder} does not exist")
    records = []
    for path in sorted(folder.iterdir()):
        match = _SMB_FILE.fullmatch(path.name)
        if not match or not path.is_file():
            continue
        world, level = match.groups()
        records.append(
            VideoRecord(
                id=f"smb-{world}-{level}",
                path=path,
                title=f"Super Mario Bros. World {world}-{level} playthrough (PPO agent)",
                description=(
                    f"A PPO agent plays Super Mario Bros. (NES) world {world}-{level} from start "
                    f"to flag. Gameplay recording from {SMB_SOURCE} (MIT licence)."
                ),
                uploader=SMB_UPLOADER,
                license=SMB_LICENSE,
                duration_s=probe_duration(path),
                upload_date=None,
            )
        )
    if not records:
        raise CatalogError(f"no smb_W_L.mp4 files in {folder}")
    return records


def probe_duration(path: pathlib.Path) -> float:
    """The container duration in seconds from ffprobe, cached per file version."""
    stat = path.stat()
    return _probe_duration_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _probe_duration_cached(path: str, size: int, mtime_ns: int) -> float:
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return float(result.stdout.strip())
    except ValueError:
        raise CatalogError(f"ffprobe cannot read a duration from {path}: {result.stderr.strip()}") from None


def check_unique(records: list[VideoRecord], where: str) -> None:
    """Raise CatalogError if two records share an id."""
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise CatalogError(f"{where}: duplicate video id {record.id!r}")
        seen.add(record.id)


def search(records: list[VideoRecord], query: str, limit: int) -> list[VideoRecord]:
    """Videos with any query word in title or description, most matching words first.

    Ties keep catalog order; an empty query matches every video.
    """
    wanted = set(_WORD.findall(query.lower()))
    if not wanted:
        return records[:limit]
    scored = [(len(wanted & record.words()), index, record) for index, record in enumerate(records)]
    hits = sorted((entry for entry in scored if entry[0] > 0), key=lambda entry: (-entry[0], entry[1]))
    return [record for _, _, record in hits[:limit]]
