"""The scenery behind a level: a sky gradient and periodic silhouette layers that scroll
slower than the level (parallax). Layers are drawn once; each frame only slices them."""

import dataclasses

import numpy as np

from world.sprites import shade
from world.themes import RGB, Theme

PERIOD = 320  # pixels after which a layer repeats; layers are drawn this wide plus one view


@dataclasses.dataclass(frozen=True)
class Layer:
    """A scrolling layer: rgb (H, PERIOD + view width, 3), mask of opaque pixels, speed factor."""

    rgb: np.ndarray
    mask: np.ndarray
    factor: float

    def window(self, camera_x: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        offset = int(camera_x * self.factor) % PERIOD
        return self.rgb[:, offset:offset + width], self.mask[:, offset:offset + width]


def sky(theme: Theme, width: int, height: int) -> np.ndarray:
    """The fixed sky: a vertical gradient with the theme's stars or sun, (height, width, 3)."""
    t = np.linspace(0.0, 1.0, height)[:, None]
    column = (1 - t) * np.array(theme.sky_top) + t * np.array(theme.sky_bottom)
    image = np.repeat(column[:, None, :], width, axis=1).round().astype(np.uint8)
    rng = np.random.default_rng(7)
    if theme.sky_detail == "stars":
        ys, xs = rng.integers(0, height * 2 // 3, 40), rng.integers(0, width, 40)
        image[ys, xs] = (230, 230, 255)
    elif theme.sky_detail == "sun":
        yy, xx = np.mgrid[:height, :width]
        disc = (yy - height * 0.25) ** 2 + (xx - width * 0.75) ** 2 < (height * 0.12) ** 2
        image[disc] = shade(theme.sky_bottom, 1.4)
    return image


def _periodic_profile(rng: np.random.Generator, harmonics: tuple[int, ...], amplitude: float) -> np.ndarray:
    """A smooth height profile over PERIOD columns that wraps around without a seam."""
    x = np.arange(PERIOD) / PERIOD * 2 * np.pi
    profile = np.zeros(PERIOD)
    for k in harmonics:
        profile += rng.uniform(0.4, 1.0) / k ** 0.5 * np.sin(k * x + rng.uniform(0, 2 * np.pi))
    return (profile - profile.min()) / (np.ptp(profile) + 1e-9) * amplitude


def _peaks(rng: np.random.Generator, count: int, low: float, high: float, slope: float) -> np.ndarray:
    """Triangular peaks (mountains, trees, stalactites) over PERIOD columns, wrapping."""
    x = np.arange(PERIOD)
    profile = np.zeros(PERIOD)
    for centre in np.linspace(0, PERIOD, count, endpoint=False) + rng.uniform(0, PERIOD / count, count):
        distance = np.minimum(np.abs(x - centre), PERIOD - np.abs(x - centre))
        profile = np.maximum(profile, rng.uniform(low, high) - distance * slope)
    return profile


def _from_profile(profile: np.ndarray, height: int, base: int, color: RGB, hanging: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fills below a height profile (above it when hanging) with a lightly shaded color."""
    rows = np.arange(height)[:, None]
    if hanging:
        mask = rows < profile[None, :]
    else:
        mask = rows >= height - base - profile[None, :]
    t = rows / max(1, height - 1)
    rgb = np.clip(np.array(color)[None, None, :] * (0.85 + 0.3 * t)[..., None], 0, 255).astype(np.uint8)
    return np.broadcast_to(rgb, (height, PERIOD, 3)).copy(), mask


def _city(rng: np.random.Generator, height: int, color: RGB) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((height, PERIOD, 3), dtype=np.uint8)
    mask = np.zeros((height, PERIOD), dtype=bool)
    x = 0
    while x < PERIOD:
        width = int(rng.integers(12, 28))
        top = height - int(rng.integers(20, height * 2 // 3))
        end = min(x + width, PERIOD)
        mask[top:, x:end] = True
        rgb[top:, x:end] = color
        windows = np.zeros((height - top, end - x), dtype=bool)
        windows[2::4, 2::4] = rng.random(windows[2::4, 2::4].shape) < 0.4
        rgb[top:, x:end][windows] = (230, 210, 120)
        x = end + int(rng.integers(0, 4))
    return rgb, mask


def _far(theme: Theme, rng: np.random.Generator, height: int) -> tuple[np.ndarray, np.ndarray]:
    shape, color = theme.far_shape, theme.far_color
    if shape == "mountains":
        rgb, mask = _from_profile(_peaks(rng, 5, height * 0.35, height * 0.6, 0.8), height, 10, color)
        rgb[mask & ~np.roll(mask, 3, axis=0)] = shade(color, 1.4)  # light ridges
        return rgb, mask
    if shape == "dunes":
        return _from_profile(_periodic_profile(rng, (1, 2, 3), height * 0.3), height, 12, color)
    if shape == "city":
        return _city(rng, height, color)
    return _from_profile(_peaks(rng, 9, height * 0.15, height * 0.4, 1.2), height, 0, color, hanging=True)


def _near(theme: Theme, rng: np.random.Generator, height: int) -> tuple[np.ndarray, np.ndarray]:
    shape, color = theme.near_shape, theme.near_color
    if shape == "hills":
        return _from_profile(_periodic_profile(rng, (2, 3, 5), height * 0.25), height, 8, color)
    if shape == "trees":
        return _from_profile(_peaks(rng, 12, height * 0.2, height * 0.4, 1.6), height, 6, color)
    if shape == "rocks":
        return _from_profile(_periodic_profile(rng, (3, 7, 11), height * 0.22), height, 6, color)
    rgb = np.zeros((height, PERIOD, 3), dtype=np.uint8)
    mask = np.zeros((height, PERIOD), dtype=bool)
    for left in range(0, PERIOD, 40):  # columns
        top = height - int(rng.integers(30, 50))
        mask[top:, left + 4:left + 12] = True
        rgb[top:, left + 4:left + 12] = color
        rgb[top:, left + 5:left + 7] = shade(color, 1.3)
        rgb[top:top + 3, left + 2:left + 14] = shade(color, 1.2)
        mask[top:top + 3, left + 2:left + 14] = True
    return rgb, mask


def _clouds(rng: np.random.Generator, height: int) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((height, PERIOD, 3), 250, dtype=np.uint8)
    mask = np.zeros((height, PERIOD), dtype=bool)
    yy, xx = np.mgrid[:height, :PERIOD]
    for _ in range(5):
        cx, cy = rng.uniform(0, PERIOD), rng.uniform(8, height * 0.35)
        for dx, r in ((-6, 4), (0, 6), (7, 4)):
            distance_x = np.minimum(np.abs(xx - cx - dx), PERIOD - np.abs(xx - cx - dx))
            mask |= distance_x ** 2 + ((yy - cy) * 1.6) ** 2 < r ** 2
    return rgb, mask


def _wrap(rgb: np.ndarray, mask: np.ndarray, factor: float, width: int) -> Layer:
    """Appends the layer's first `width` columns so any window of that width is one slice."""
    return Layer(np.concatenate([rgb, rgb[:, :width]], axis=1), np.concatenate([mask, mask[:, :width]], axis=1), factor)


def layers(theme: Theme, width: int, height: int) -> list[Layer]:
    """The theme's parallax layers, back to front, for a view of (width, height)."""
    rng = np.random.default_rng(sum(map(ord, theme.name)) + 1)
    result = []
    if theme.sky_detail == "clouds":
        result.append(_wrap(*_clouds(rng, height), 0.1, width))
    if theme.far_shape != "none":
        result.append(_wrap(*_far(theme, rng, height), 0.25, width))
    if theme.near_shape != "none":
        result.append(_wrap(*_near(theme, rng, height), 0.5, width))
    return result
