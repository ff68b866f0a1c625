"""Video facts from the MP4 header, else ffprobe (pipeline/probe.py, pipeline/mp4.py)."""

import subprocess
from fractions import Fraction

import pytest

from pipeline.mp4 import read_mp4_info
from pipeline.probe import ProbeError, ffprobe, probe


def encode(path, filters: str = "null", rate: str = "30", codec: str = "libx264") -> str:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=720x480:rate={rate}:duration=2",
               "-vf", filters, "-c:v", codec, "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(command, check=True)
    return str(path)


@pytest.mark.parametrize("filters, rate, sample_aspect", [
    ("null", "30000/1001", Fraction(1)),
    ("setsar=32/27", "25", Fraction(32, 27)),
])
def test_mp4_header_gives_what_ffprobe_gives(tmp_path, filters, rate, sample_aspect):
    """Size, exact frame rate, pixel aspect and duration read from the header equal ffprobe's."""
    path = encode(tmp_path / "v.mp4", filters, rate)
    from_header, from_ffprobe = read_mp4_info(path), ffprobe(path)
    assert (from_header.fps, from_header.sample_aspect) == (Fraction(rate), sample_aspect)
    assert (from_header.width, from_header.height, from_header.fps, from_header.sample_aspect) == (
        from_ffprobe.width, from_ffprobe.height, from_ffprobe.fps, from_ffprobe.sample_aspect)
    assert from_header.duration_s == pytest.approx(from_ffprobe.duration_s, abs=1e-5)


def test_real_footage_header_matches_ffprobe(smb_dir):
    """The real SMB clips read the same from their header as through ffprobe."""
    for path in sorted(smb_dir.glob("smb_*.mp4"))[:4]:
        header, reference = probe(str(path)), ffprobe(str(path))
        assert (header.width, header.height, header.fps) == (reference.width, reference.height, reference.fps)


def test_other_containers_fall_back_to_ffprobe(tmp_path):
    """A Matroska file has no MP4 header; probe still answers, through ffprobe."""
    path = encode(tmp_path / "v.mkv")
    assert read_mp4_info(path) is None
    assert probe(path).fps == 30


def test_an_unreadable_file_is_a_probe_error(tmp_path):
    """Bytes that are no video fail with ProbeError."""
    path = tmp_path / "bad.mp4"
    path.write_bytes(bytes(range(256)) * 200)
    with pytest.raises(ProbeError):
        probe(str(path))
