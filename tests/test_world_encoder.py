import subprocess

import numpy as np
import pytest

from world.canvas import CANVAS, blank
from world.encoder import EncoderError, VideoWriter


def test_writes_an_mp4_at_the_requested_size(tmp_path):
    """Canvas frames come out as an H.264 MP4 scaled to the requested size."""
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 1280, 720, 60) as writer:
        for shade in range(12):
            writer.write(blank((shade * 20, 0, 0)))
    command = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,nb_frames",
               "-of", "csv=p=0", str(path)]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() == "h264,1280,720,12"
    assert not list(tmp_path.glob(".*partial*"))


def test_wrong_frame_shape_is_rejected(tmp_path):
    """A frame that is not a 320x180 RGB uint8 canvas is an error, and no file is left."""
    with pytest.raises(ValueError, match="180x320x3"):
        with VideoWriter(tmp_path / "bad.mp4", 640, 360, 30) as writer:
            writer.write(np.zeros((90, 160, 3), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_reported_with_its_message(tmp_path):
    """When ffmpeg cannot write the output, the error carries ffmpeg's own message."""
    with pytest.raises(EncoderError, match="No such file or directory"):
        with VideoWriter(tmp_path / "missing" / "out.mp4", 640, 360, 30) as writer:
            for _ in range(30):
                writer.write(np.zeros((CANVAS[1], CANVAS[0], 3), dtype=np.uint8))
