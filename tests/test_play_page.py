"""The play page (`genie play --serve`, jobs/play_page.py + pages/static/play/) in a real headless chromium.

An untrained tiny world with one MaskGIT step a frame: these check the page and its API
(keys, buttons, counter, reset, upload, download), not what a trained world draws.
"""

import base64
import io
import json
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import torch
from fixtures_browser import browser, console_errors  # noqa: F401 (fixture)
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from jobs import play
from jobs.play_page import PlaySession, play_page
from models.config import load_model_configs
from models.dynamics import DynamicsModel
from models.playable import PlayableWorld
from models.tokenizer import VideoTokenizer
from pages.server import PageServer


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    configs = load_model_configs("tiny")
    return PlayableWorld(VideoTokenizer(configs.tokenizer), DynamicsModel(configs.dynamics), steps=1)


START = np.zeros((90, 160, 3), np.uint8)
START[30:60, 40:70] = (250, 200, 40)


@pytest.fixture
def server(world):
    with PageServer(play_page(PlaySession(world, START))) as running:
        yield running


def _request(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_for_frame(browser, number: int) -> None:
    """Until the counter says `number` and that frame's image has arrived and decoded."""
    WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "counter").text == f"frame {number}")
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(
        "const f = document.getElementById('frame');"
        "return f.complete && f.naturalWidth === 160 && f.src.endsWith('n=' + arguments[0]);", number))


def test_keys_and_buttons_bring_new_frames_and_reset_goes_back(server, browser):
    """Pressing a digit key or an action button shows the next generated frame; R goes back to frame 0."""
    browser.get(server.url)
    _wait_for_frame(browser, 0)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#buttons button")) == 8
    # shown large and crisp: each frame pixel a uniform 6x6 block on screen (nearest neighbour)
    shot = cv2.imdecode(np.frombuffer(browser.find_element(By.ID, "frame").screenshot_as_png, np.uint8), cv2.IMREAD_COLOR)
    assert shot.shape[:2] == (542, 962)  # 960x540 inside a 1-pixel border
    np.testing.assert_allclose(shot[1:-1, 1:-1, ::-1], START.repeat(6, 0).repeat(6, 1), atol=3)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("3")
    _wait_for_frame(browser, 1)
    browser.find_element(By.CSS_SELECTOR, "#buttons button[data-action='5']").click()
    _wait_for_frame(browser, 2)
    assert browser.find_element(By.ID, "actions").text == "actions 35"
    status, first = _request(server.url + "api/frame?n=1")
    assert status == 200 and cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR).shape == (90, 160, 3)
    body.send_keys("r")
    _wait_for_frame(browser, 0)
    assert browser.find_element(By.ID, "actions").text == ""
    assert console_errors(browser) == []


def test_upload_starts_from_the_new_image_and_the_rollout_downloads(server, browser, tmp_path):
    """An uploaded image becomes frame 0 (fitted into 160x90); the download is a GIF of every frame so far."""
    upload = np.zeros((240, 320, 3), np.uint8)
    upload[:, :160] = (30, 120, 220)
    upload[60:180, 200:280] = (240, 240, 240)
    cv2.imwrite(str(tmp_path / "new.png"), upload[..., ::-1])
    browser.get(server.url)
    _wait_for_frame(browser, 0)
    browser.find_element(By.TAG_NAME, "body").send_keys("1")
    _wait_for_frame(browser, 1)
    browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "new.png"))
    _wait_for_frame(browser, 0)
    _, start = _request(server.url + "api/frame?n=0")
    shown = cv2.imdecode(np.frombuffer(start, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(shown.astype(int) - play.fit_image(upload)).max() <= 2
    for key in "26":
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
        _wait_for_frame(browser, "26".index(key) + 1)
    href = browser.find_element(By.ID, "download").get_attribute("href")
    status, gif = _request(href)
    assert status == 200 and Image.open(io.BytesIO(gif)).n_frames == 3
    assert console_errors(browser) == []


def test_bad_requests_get_clear_errors(server):
    """An action outside the codebook, an unreadable upload and a frame never made are refused by name."""
    status, reply = _request(server.url + "api/step", {"action": 8})
    assert status == 400 and "0..7" in json.loads(reply)["error"]
    status, reply = _request(server.url + "api/upload", {"image": "data:image/png;base64," + base64.b64encode(b"hi").decode()})
    assert status == 400 and "not a readable image" in json.loads(reply)["error"]
    status, reply = _request(server.url + "api/frame?n=5")
    assert status == 404 and "not kept" in json.loads(reply)["error"]
    status, reply = _request(server.url + "api/state")
    assert status == 200 and json.loads(reply)["frame"] == 0
