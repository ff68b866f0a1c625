"""`genie` turns an error the user can fix into one line, `genie: error: ...`, and a non-zero exit."""

import numpy as np
import cv2

from jobs.cli import main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genie: error: "), err
    return lines[0]


def test_a_config_with_an_unknown_key_is_one_line_naming_the_key(tmp_path, capsys):
    """A typo in a run config fails with the key's name, exit status 1."""
    config = tmp_path / "run.toml"
    config.write_text('output_dir = "out"\n[corpus]\nvidoes = 3\n')
    assert main(["run", "--config", str(config)]) == 1
    assert "corpus.vidoes" in _error_line(capsys)


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    """A config path that does not exist fails with its name."""
    assert main(["run", "--config", str(tmp_path / "nope.toml")]) == 1
    assert "nope.toml" in _error_line(capsys)


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    """Playing from a run folder that holds no checkpoint names the folder."""
    image = tmp_path / "start.png"
    cv2.imwrite(str(image), np.zeros((90, 160, 3), np.uint8))
    missing = tmp_path / "no-such-run"
    assert main(["play", "--tokenizer", str(missing), "--dynamics", str(missing), "--image", str(image),
                 "--out", str(tmp_path / "play.png")]) == 1
    assert str(missing) in _error_line(capsys)
