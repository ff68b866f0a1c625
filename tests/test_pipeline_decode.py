"""One ffmpeg decode into detection frames and 160x90 @ 10 FPS samples (pipeline/decode.py)."""

import subprocess
from fractions import Fraction

import numpy as np
import pytest

from pipeline.decode import DecodeConfig, DecodeError, FrameStreams, geometry, sample_frame
from pipeline.probe import VideoInfo, probe


def make_video(path, source: str, rate: str, seconds: float, size: str = "320x240") -> str:
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}:duration={seconds}",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(command, check=True)
    return str(path)


def decode(path: str, config: DecodeConfig = DecodeConfig()):
    """(number of detection frames, samples) of a whole video, read as the pipeline does."""
    info = probe(path)
    frames, samples = 0, []
    with FrameStreams(path, info, config) as streams:
        for chunk in streams.detection_chunks():
            frames += len(chunk)
            samples += streams.samples_before(frames - 2)
        samples += streams.remaining_samples()
        streams.finish()
    return info, frames, samples


def full_decode(path: str, info: VideoInfo, aspect: str) -> np.ndarray:
    """Every source frame at 160x90 through the same scaling and conversion (bgr24, as RGB), by a
    separate plain ffmpeg."""
    scale = geometry(info, aspect).ffmpeg_filter()
    command = ["ffmpeg", "-v", "error", "-threads", "1", "-i", path, "-vf", f"{scale},setsar=1,format=bgr24",
               "-fps_mode", "passthrough", "-f", "rawvideo", "-"]  # fmt: skip
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 90, 160, 3)[..., ::-1]


@pytest.mark.parametrize("rate", ["60", "30000/1001", "25"])
def test_samples_are_exactly_the_source_frames_the_sampling_rule_names(tmp_path, rate):
    """Sample k is source frame ceil(k * fps / 10), pixel for pixel, at 60, 29.97 and 25 fps."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", rate, 4)
    info, n_frames, samples = decode(path)
    full = full_decode(path, info, "pad")
    assert n_frames == len(full)
    assert [index for index, _ in samples] == [sample_frame(k, info.fps) for k in range(len(samples))]
    assert sample_frame(len(samples), info.fps) >= n_frames  # none missing at the end
    assert all(np.array_equal(frame, full[index]) for index, frame in samples)


def test_real_footage_pads_to_16_9_with_black_side_bars(smb_dir):
    """The near-square SMB footage is scaled to 96x90 and centred between black bars under "pad"."""
    info, _, samples = decode(str(smb_dir / "smb_1_1.mp4"))
    assert geometry(info, "pad").ffmpeg_filter() == "scale=96:90:flags=area,pad=160:90:32:0:color=black"
    frame = samples[50][1]
    assert frame[:, :32].max() == 0 and frame[:, 128:].max() == 0 and frame[:, 32:128].mean() > 20


@pytest.mark.parametrize("aspect, expected", [
    ("crop", "scale=160:150:flags=area,crop=160:90:0:30"),
    ("stretch", "scale=160:90:flags=area"),
    ("pad", "scale=96:90:flags=area,pad=160:90:32:0:color=black"),
])
def test_aspect_policies_fit_the_display_size(aspect, expected):
    """Each aspect policy gives the scale and pad/crop for a 256x240 square-pixel source."""
    info = VideoInfo(256, 240, Fraction(60), 10.0, Fraction(1))
    assert geometry(info, aspect).ffmpeg_filter() == expected


def test_anamorphic_pixels_are_scaled_by_their_display_aspect():
    """720x480 with 32:27 pixels displays at 16:9 and fills 160x90 without bars."""
    info = VideoInfo(720, 480, Fraction(30), 10.0, Fraction(32, 27))
    assert geometry(info, "pad").ffmpeg_filter() == "scale=160:90:flags=area"


def test_detection_stream_has_every_frame_at_detect_size(tmp_path):
    """Detection chunks cover every source frame, in order, at the configured size."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", "30", 3)
    info = probe(path)
    with FrameStreams(path, info, DecodeConfig(detect_width=32, detect_height=18)) as streams:
        chunks = list(streams.detection_chunks())
        streams.remaining_samples()
        streams.finish()
    assert [chunk.shape[1:] for chunk in chunks] == [(18, 32, 3)] * len(chunks)
    assert sum(len(chunk) for chunk in chunks) == 90


def test_a_source_under_10_fps_is_refused(tmp_path):
    """Clips are 10 FPS: a slower source cannot be sampled and is a ValueError."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", "5", 2)
    with pytest.raises(ValueError, match="below 10"):
        FrameStreams(path, probe(path), DecodeConfig())


def test_a_stalled_decode_is_stopped_by_its_time_limit(tmp_path):
    """A decode that outlives its limit is killed and reported as decode_timeout."""
    path = make_video(tmp_path / "v.mp4", "testsrc2", "30", 2)
    with FrameStreams(path, probe(path), DecodeConfig(timeout_base_s=0.0, timeout_per_source_s=0.0)) as streams:
        with pytest.raises(DecodeError, match="decode_timeout"):
            for _ in streams.detection_chunks():
                pass
            streams.remaining_samples()
            streams.finish()
