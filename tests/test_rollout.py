"""`genie rollout` (jobs/rollout.py): a video of an action sequence and a grid of each action over time.

Untrained tiny models, few MaskGIT steps: these check what is written, not what a trained world draws.
"""

import json
import subprocess

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from jobs import play, rollout
from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.tokenizer import VideoTokenizer
from fixtures_checkpoint import write_model_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rollout")
    torch.manual_seed(0)
    configs = load_model_configs("tiny")
    paths = {name: str(write_model_checkpoint(root / name, name, model)) for name, model in (
        ("tokenizer", VideoTokenizer(configs.tokenizer)), ("dynamics", DynamicsModel(configs.dynamics)))}
    image = np.zeros((240, 256, 3), np.uint8)
    image[100:140, 50:90] = (40, 200, 250)
    cv2.imwrite(str(root / "start.png"), image)
    return root, ["--tokenizer", paths["tokenizer"], "--dynamics", paths["dynamics"], "--image", str(root / "start.png"),
                  "--steps", "1"]


def test_rollout_writes_a_video_of_the_sequence_and_a_grid_per_action(runs):
    """An MP4 with the start image and one frame per action at 640x360, 10 fps; a PNG with a row per action."""
    root, common = runs
    assert rollout.main([*common, "--actions", "1,1,4", "--video", str(root / "seq.mp4"),
                         "--grid", str(root / "grid.png"), "--frames", "2"]) == 0
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,nb_read_frames,avg_frame_rate", "-of", "json", str(root / "seq.mp4")],
        capture_output=True, check=True, text=True).stdout)["streams"][0]
    assert (probe["width"], probe["height"], int(probe["nb_read_frames"]), probe["avg_frame_rate"]) == (640, 360, 4, "10/1")
    grid = cv2.imread(str(root / "grid.png"))
    assert grid.shape[0] == 8 * 90 + 7 * 2  # 8 latent actions, 2-pixel gaps
    assert grid.shape[1] > 3 * 160 + 2 * 2  # label margin + start image + 2 frames
    assert not list(root.glob(".*partial*"))


def test_rollout_writes_a_gif_whose_first_frame_is_the_start_image(runs):
    """A GIF holds the start image (pixels as 4x4 blocks) then a frame per action."""
    root, common = runs
    assert rollout.main([*common, "--actions", "2,3", "--video", str(root / "seq.gif")]) == 0
    gif = Image.open(root / "seq.gif")
    assert gif.n_frames == 3 and gif.size == (640, 360)
    start = play.fit_image(cv2.imread(str(root / "start.png"))[..., ::-1])  # two colours: the palette keeps them
    np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), start.repeat(4, 0).repeat(4, 1))


def test_rollout_refuses_bad_requests(runs):
    """No output, a video without actions, an unknown video format and bad actions are refused before any model runs."""
    root, common = runs
    for extra in ([], ["--video", str(root / "a.mp4")], ["--video", str(root / "a.avi"), "--actions", "1"],
                  ["--grid", str(root / "g.png"), "--frames", "0"], ["--video", str(root / "a.mp4"), "--actions", "1,x"]):
        with pytest.raises(SystemExit):
            rollout.main([*common, *extra])
    assert not (root / "a.mp4").exists() and not (root / "g.png").exists()
