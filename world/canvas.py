"""The canvas every video frame is composed on before ffmpeg scales it to the upload size.

Frames are built at CANVAS size (320x180, 16:9) and scaled up with nearest-neighbour by
ffmpeg, which keeps the pixel-art look and keeps numpy's work small. Gameplay (160x90) is
doubled onto the canvas; text is drawn with Pillow's built-in font.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANVAS = (320, 180)  # width, height


def blank(color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A canvas filled with one color, (height, width, 3) uint8."""
    frame = np.empty((CANVAS[1], CANVAS[0], 3), dtype=np.uint8)
    frame[:] = color
    return frame


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor."""
    height, width, channels = image.shape
    out = np.empty((height * factor, width * factor, channels), dtype=image.dtype)
    out.reshape(height, factor, width, factor, channels)[:] = image[:, None, :, None, :]
    return out


def gradient(top: tuple[int, int, int], bottom: tuple[int, int, int], size: tuple[int, int] = CANVAS) -> np.ndarray:
    """A vertical two-color gradient, (height, width, 3) uint8."""
    width, height = size
    t = np.linspace(0.0, 1.0, height)[:, None]
    column = (1 - t) * np.array(top) + t * np.array(bottom)
    return np.repeat(column[:, None, :], width, axis=1).round().astype(np.uint8)


def draw_text(frame: np.ndarray, text: str, xy: tuple[float, float], size: int,
              color: tuple[int, int, int] = (255, 255, 255), anchor: str = "mm",
              shadow: tuple[int, int, int] | None = (0, 0, 0)) -> None:
    """Writes text into the frame in place (anchor as in Pillow: "mm" centres it on xy)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    if shadow is not None:
        offset = max(1, size // 12)
        draw.text((xy[0] + offset, xy[1] + offset), text, fill=shadow, font=font, anchor=anchor)
    draw.text(xy, text, fill=color, font=font, anchor=anchor)
    frame[:] = np.asarray(image)
