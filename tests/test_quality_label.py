"""The labelling page (`genie quality label`, jobs/quality_label.py + pages/static/label/) in a
real headless chromium, over a run folder written by the ingest job's own shard and lineage
writers."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from fixtures_browser import browser, console_errors  # noqa: F401 (fixture)
from fixtures_run import write_run
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from jobs.quality_label import LabelSession, clips_to_label, label_page
from pages.server import PageServer
from schemas.labels import read_labels

N_FRAMES = 30
ROOT = pathlib.Path(__file__).resolve().parents[1]


def clip_frames(video: int, clip: int) -> np.ndarray:
    """Frames whose top-left block says the frame number and whose right half says the clip."""
    frames = np.zeros((N_FRAMES, 90, 160, 3), np.uint8)
    frames[:, :, 80:] = (40 * video + 20, 30 * clip + 20, 200)
    frames[:, :20, :20] = (np.arange(N_FRAMES, dtype=np.uint8) * 8)[:, None, None, None]
    return frames


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    videos = {f"site:v{video}": [clip_frames(video, clip) for clip in range(3)] for video in range(2)}
    return write_run(tmp_path_factory.mktemp("label_run"), videos)


@pytest.fixture
def server(run, tmp_path):
    session = LabelSession(clips_to_label(str(run.root)), str(tmp_path / "labels.parquet"), "tester")
    with PageServer(label_page(session)) as running:
        yield running, session


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _shown(browser) -> str:
    return browser.find_element(By.ID, "player").get_attribute("data-clip")


def test_keys_label_skip_and_undo_into_the_labels_file(run, server, browser, tmp_path):
    """A clip plays (its own frames, advancing), keys score and skip, Backspace undoes, the file holds the rows."""
    running, session = server
    order = [clip.clip_id for clip in session.clips]
    browser.get(running.url + "?speed=1")
    WebDriverWait(browser, 30).until(lambda b: _shown(b) == order[0])
    seen = set()

    def plays_its_frames(b) -> bool:  # the pixel under the frame block matches the frame number shown
        frame, pixel = b.execute_script(
            "const c = document.getElementById('player');"
            "return [Number(c.dataset.frame), Array.from(c.getContext('2d').getImageData(5, 5, 1, 1).data)];")
        if frame is not None and pixel[0] == frame * 8:
            seen.add(frame)
        return len(seen) >= 3

    WebDriverWait(browser, 30, poll_frequency=0.05).until(plays_its_frames)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#stills canvas")) == 8
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("5")
    assert _shown(browser) == order[1]  # at once: the next clip was already there
    body.send_keys("1", " ", "3")
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "progress").text == "3 / 6 labelled · 1 skipped")
    assert _shown(browser) == order[4]
    body.send_keys("\ue003")  # Backspace: undo the 3
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "progress").text == "2 / 6 labelled · 1 skipped")
    assert _shown(browser) == order[3]
    rows = {row["clip_id"]: row for row in read_labels(str(tmp_path / "labels.parquet")).to_pylist()}
    assert {clip: row["score"] for clip, row in rows.items()} == {order[0]: 5, order[1]: 1}
    assert {row["labeller"] for row in rows.values()} == {"tester"}
    assert rows[order[0]]["video_id"] == session.by_id[order[0]].video_id
    assert console_errors(browser) == []
    resumed = LabelSession(clips_to_label(str(run.root)), str(tmp_path / "labels.parquet"), "tester").state()
    assert resumed["labelled"] == 2 and resumed["clips"][0]["clip_id"] == order[2]  # the skip lasted one session


def test_bad_requests_are_refused_by_name(server):
    """A score outside 1..5, a clip not in the run and an undo with nothing done are refused; nothing is written."""
    running, session = server
    first = session.clips[0].clip_id
    assert _post(running.url + "api/label", {"clip_id": first, "score": 6})[0] == 400
    status, reply = _post(running.url + "api/label", {"clip_id": "../../x", "score": 3})
    assert status == 404 and "not a kept clip" in reply["error"]
    assert _post(running.url + "api/undo", {})[0] == 409
    assert session.state()["labelled"] == 0 and not session.labels


def test_a_label_survives_the_server_being_killed(run, tmp_path):
    """`genie quality label` as its own process: a label it answered for is in the file after a SIGKILL."""
    labels = tmp_path / "labels.parquet"
    command = [sys.executable, "-m", "jobs.cli", "quality", "label", "--run", str(run.root), "--labels", str(labels),
               "--labeller", "ana", "--port", "0"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group(0)
        first = json.loads(urllib.request.urlopen(url + "api/state", timeout=30).read())["clips"][0]["clip_id"]
        assert _post(url + "api/label", {"clip_id": first, "score": 4})[0] == 200
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert [(row["clip_id"], row["score"], row["labeller"]) for row in read_labels(str(labels)).to_pylist()] == [(first, 4, "ana")]
