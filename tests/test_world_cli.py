import json

from world.cli import main


def test_render_writes_an_upload_and_its_sidecar(tmp_path, capsys):
    """`genie world render` writes the MP4 and a sidecar whose length matches the request."""
    out = tmp_path / "clip.mp4"
    assert main(["render", "--out", str(out), "--seed", "2", "--duration", "4"]) == 0
    truth = json.loads((tmp_path / "clip.truth.json").read_text())
    assert out.stat().st_size > 10_000
    assert 3 * 30 <= truth["n_frames"] and len(truth["actions"]) == truth["n_frames"]
    assert "wrote" in capsys.readouterr().out


def test_play_prints_the_episode_outcome(capsys):
    """`genie world play` runs the scripted agent and prints the final info as JSON."""
    assert main(["play", "--seed", "3", "--steps", "2000"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["status"] == "goal" and outcome["return"] > 1


def test_bad_corpus_options_are_reported_not_raised(tmp_path, capsys):
    """An impossible corpus request exits with status 2 and a message naming the problem."""
    assert main(["corpus", "--out", str(tmp_path), "--videos", "2", "--offtopic", "3"]) == 2
    assert "offtopic" in capsys.readouterr().err
