"""Non-game footage for the off-topic uploads that keyword search also finds (unboxings,
movie trailers, cooking, vlogs, reviews, workouts): simple moving shapes and gradients,
drawn at half the canvas size and doubled. They only need to look unlike a platformer."""

from collections.abc import Callable, Iterator

import numpy as np

from world.canvas import CANVAS, draw_text, gradient, upscale

TOPICS = ("unboxing", "trailer", "cooking", "vlog", "review", "workout")
_SIZE = (CANVAS[0] // 2, CANVAS[1] // 2)  # width, height of the drawing
_YY, _XX = np.mgrid[:_SIZE[1], :_SIZE[0]]
_TRAILER_CARDS = ("THIS SUMMER", "ONE LAST JOB", "NOTHING IS WHAT IT SEEMS", "COMING SOON")


def _disc(cx: float, cy: float, rx: float, ry: float | None = None) -> np.ndarray:
    return ((_XX - cx) / rx) ** 2 + ((_YY - cy) / (ry or rx)) ** 2 <= 1.0


def _rect(image: np.ndarray, x: float, y: float, width: float, height: float, color) -> None:
    x0, y0 = max(0, int(x)), max(0, int(y))
    image[y0:max(y0, int(y + height)), x0:max(x0, int(x + width))] = color


def _unboxing(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    wall = gradient((200, 190, 170), (150, 140, 120), _SIZE)
    box = tuple(int(c) for c in rng.integers(150, 210, 3))

    def draw(image: np.ndarray, t: float) -> None:
        image[:] = wall
        _rect(image, 0, 60, 160, 30, (110, 76, 50))  # table
        _rect(image, 55, 35, 50, 30, box)
        flap = 12 * min(1.0, t / 4)
        _rect(image, 55 - flap, 30, 25 + flap, 5, (170, 140, 100))
        _rect(image, 80, 30, 25 + flap, 5, (170, 140, 100))
        image[_disc(80 + 35 * np.sin(t * 1.3), 45 + 8 * np.cos(t * 2.1), 9, 6)] = (230, 180, 150)
    return draw


def _trailer(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    tint = rng.integers(20, 70, 3)

    def draw(image: np.ndarray, t: float) -> None:
        glow = np.clip(60 - np.abs(_XX - (t * 40) % 200 + 20) * 2, 0, 60)
        image[:] = np.clip(tint[None, None, :] * 0.3 + glow[..., None], 0, 255).astype(np.uint8)
        image[:12], image[-12:] = 0, 0
    return draw


def _cooking(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    foods = [tuple(int(c) for c in rng.integers(60, 250, 3)) for _ in range(6)]

    def draw(image: np.ndarray, t: float) -> None:
        image[:] = (50, 46, 44)
        image[_disc(80, 48, 42, 30)] = (30, 30, 32)
        image[_disc(80, 48, 36, 25)] = (70, 70, 76)
        for index, food in enumerate(foods):
            angle = t * (1 + index * 0.3) + index
            image[_disc(80 + 22 * np.cos(angle), 48 + 14 * np.sin(angle), 5, 4)] = food
        _rect(image, 120, 44, 40, 8, (120, 80, 40))  # the pan's handle
    return draw


def _vlog(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    room = gradient(tuple(int(c) for c in rng.integers(120, 230, 3)), (60, 60, 70), _SIZE)
    shirt = tuple(int(c) for c in rng.integers(30, 220, 3))

    def draw(image: np.ndarray, t: float) -> None:
        image[:] = room
        sway = 6 * np.sin(t * 1.7)
        image[_disc(80 + sway, 100, 40, 30)] = shirt
        image[_disc(80 + sway, 45, 14, 18)] = (230, 190, 160)
        image[_disc(80 + sway, 33, 15, 8)] = (60, 40, 30)
        for index in range(4):
            image[_disc((index * 47 + t * 10) % 160, 15 + index * 5, 4)] = (255, 240, 200)
    return draw


def _review(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    backdrop = gradient((235, 235, 240), (180, 185, 195), _SIZE)
    body = tuple(int(c) for c in rng.integers(20, 120, 3))

    def draw(image: np.ndarray, t: float) -> None:
        image[:] = backdrop
        half = 18 * abs(np.cos(t * 0.8)) + 3
        _rect(image, 80 - half, 15, 2 * half, 60, body)
        if half > 8:
            _rect(image, 80 - half + 3, 19, 2 * half - 6, 52, (70, 140, 220))
    return draw


def _workout(rng: np.random.Generator) -> Callable[[np.ndarray, float], None]:
    wall = tuple(int(c) for c in rng.integers(150, 230, 3))

    def draw(image: np.ndarray, t: float) -> None:
        image[:] = wall
        _rect(image, 0, 70, 160, 20, (90, 60, 50))
        lift = 12 * abs(np.sin(t * 3))
        _rect(image, 74, 38 - lift, 12, 20, (220, 50, 50))
        _rect(image, 74, 58 - lift, 4, 12, (40, 40, 90))
        _rect(image, 82, 58 - lift, 4, 12, (40, 40, 90))
        image[_disc(80, 31 - lift, 6)] = (230, 190, 160)
    return draw


_SCENES = {"unboxing": _unboxing, "trailer": _trailer, "cooking": _cooking,
           "vlog": _vlog, "review": _review, "workout": _workout}


def offtopic_frames(topic: str, n_frames: int, fps: int, seed: int) -> Iterator[np.ndarray]:
    """`n_frames` canvas frames of footage about `topic` (one of TOPICS)."""
    if topic not in _SCENES:
        raise ValueError(f"unknown off-topic subject {topic!r} (known: {', '.join(TOPICS)})")
    draw = _SCENES[topic](np.random.default_rng([seed, 0x0FF]))
    image = np.empty((_SIZE[1], _SIZE[0], 3), dtype=np.uint8)
    cards = []
    if topic == "trailer":
        for text in _TRAILER_CARDS:
            card = np.zeros((CANVAS[1], CANVAS[0], 3), dtype=np.uint8)
            draw_text(card, text, (160, 90), 16, color=(240, 240, 240), shadow=None)
            cards.append(card)
    card_frames = 2 * fps
    for frame in range(n_frames):
        draw(image, frame / fps)
        canvas = upscale(image, 2)
        if cards:
            strength = 1.0 - abs((frame % card_frames) / card_frames * 2 - 1)
            card = cards[(frame // card_frames) % len(cards)]
            np.maximum(canvas, (card * strength).astype(np.uint8), out=canvas)
        yield canvas
