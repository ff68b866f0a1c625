import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMB_DIR = ROOT.parent / "shared" / "corpus" / "smb"


@pytest.fixture(scope="session")
def smb_dir() -> pathlib.Path:
    """The real SMB footage beside the checkout (read-only)."""
    if not SMB_DIR.is_dir():
        pytest.fail(f"real footage not found at {SMB_DIR}")
    return SMB_DIR
