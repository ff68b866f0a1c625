"""A synthetic face-cam: a framed box with a cartoon streamer (head, hair, eyes that blink,
a mouth that talks, shoulders) pasted over a corner of the gameplay, as in many uploads."""

import numpy as np

from world.canvas import CANVAS

BOX = (84, 64)  # width, height on the canvas
_SKINS = ((240, 200, 170), (200, 150, 110), (150, 100, 70), (250, 220, 200))
_HAIRS = ((40, 30, 20), (120, 70, 30), (230, 200, 120), (20, 20, 20), (160, 40, 40))
_SHIRTS = ((200, 40, 40), (40, 90, 200), (40, 160, 90), (60, 60, 60), (230, 150, 30))
_WALLS = ((70, 80, 100), (110, 90, 120), (40, 50, 60), (120, 130, 110))


def _ellipse(shape: tuple[int, int], cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def _face(seed: int, eyes_open: bool, mouth_open: int) -> np.ndarray:
    """One face-cam image, (BOX height, BOX width, 3); mouth_open is 0, 1 or 2."""
    rng = np.random.default_rng([seed, 0xFACE])
    width, height = BOX
    skin, hair = _SKINS[rng.integers(len(_SKINS))], _HAIRS[rng.integers(len(_HAIRS))]
    shirt, wall = _SHIRTS[rng.integers(len(_SHIRTS))], _WALLS[rng.integers(len(_WALLS))]
    shape = (height, width)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = wall
    image[: height // 3, width * 2 // 3:] = tuple(min(255, c + 40) for c in wall)  # a window
    image[_ellipse(shape, width / 2, height + 6, 34, 22)] = shirt
    image[_ellipse(shape, width / 2, 30, 16, 19)] = skin
    image[_ellipse(shape, width / 2, 18, 18, 11) & ~_ellipse(shape, width / 2, 30, 15, 12)] = hair
    for eye_x in (width / 2 - 7, width / 2 + 7):
        if eyes_open:
            image[_ellipse(shape, eye_x, 28, 3, 3)] = (250, 250, 250)
            image[_ellipse(shape, eye_x + 0.5, 28.5, 1.5, 1.5)] = (30, 30, 40)
        else:
            image[28, int(eye_x) - 3:int(eye_x) + 4] = (60, 40, 30)
    image[_ellipse(shape, width / 2, 40, 6, 1 + 2 * mouth_open)] = (120, 30, 40)
    image[:2], image[-2:], image[:, :2], image[:, -2:] = 250, 250, 250, 250  # frame
    return image


class FaceCam:
    """Draws the face-cam of one video onto canvas frames; the corner and the look come from the
    seed, the blinking and talking from the frame number."""

    def __init__(self, seed: int):
        self.seed = seed
        rng = np.random.default_rng([seed, 0xCA3])
        corner = int(rng.integers(4))
        margin = 6
        self.x = margin if corner % 2 == 0 else CANVAS[0] - BOX[0] - margin
        self.y = margin if corner < 2 else CANVAS[1] - BOX[1] - margin
        self.images = {(eyes, mouth): _face(seed, eyes, mouth) for eyes in (True, False) for mouth in (0, 1, 2)}
        self.mouth_pattern = rng.integers(3, size=64)  # talks in bursts, one entry per syllable

    def draw(self, frame: np.ndarray, frame_index: int, fps: int) -> None:
        """Pastes the face-cam into a canvas frame in place."""
        blink = frame_index % (3 * fps) < max(1, fps // 10)
        syllable = frame_index // max(1, fps // 8)
        talking = (syllable // 12) % 3 != 0
        mouth = int(self.mouth_pattern[syllable % len(self.mouth_pattern)]) if talking else 0
        frame[self.y:self.y + BOX[1], self.x:self.x + BOX[0]] = self.images[(not blink, mouth)]
