import numpy as np
from PIL import Image

from world.cli import main


def test_contact_sheet_command_writes_a_png_of_every_theme_and_junk_kind(tmp_path):
    """`genie world contact-sheet` writes a 5x4 grid of distinct, non-blank labelled frames
    (19 samples: 9 themes, 3 junk kinds, title, menu, slide, black, 3 off-topic; one cell empty)."""
    path = tmp_path / "sheet.png"
    assert main(["contact-sheet", "--out", str(path)]) == 0
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert sheet.shape == (5 * 196, 4 * 320, 3)
    tiles = [sheet[r * 196:r * 196 + 180, c * 320:(c + 1) * 320] for r in range(5) for c in range(4)][:19]
    blank = [tile for tile in tiles if tile.max() == 0]
    assert len(blank) == 1  # the black-frames sample, and only it
    distinct = {tile.tobytes() for tile in tiles}
    assert len(distinct) == len(tiles)
