"""`genie play --serve`: play a trained world in the browser, on a local page (127.0.0.1).

The page (pages/static/play/) shows the current frame large with crisp pixels, a button and a
key (0-7) per latent action, a frame counter, reset (R), upload of a new start image, and
download of the rollout so far as a GIF. Each action is one world step (models/playable.py):
the dynamics model samples the next frame from the frames so far, decoded in context.
One person plays one world; requests are served in turn.
"""

import base64
import binascii
import io
import threading

import numpy as np
import torch

from pages.server import HttpError, Page, PageServer, Request, Response, static_folder

MAX_UPLOAD_PIXELS = 4096 * 4096  # checked from the image header, before decoding
MAX_KEPT_FRAMES = 1200  # frames kept for the download (2 minutes at 10 FPS); older ones drop out


class PlaySession:
    """One world being played: its start image, the frames and actions so far. Thread-safe."""

    def __init__(self, world, start_image: np.ndarray, seed: int = 0):
        self.world = world
        self.seed = seed
        self.lock = threading.Lock()
        self._start(start_image)

    def _start(self, image: np.ndarray) -> None:
        self.start_image = image
        self.frames = [image]  # (90, 160, 3) uint8 each, the latest MAX_KEPT_FRAMES
        self.actions: list[int] = []
        self.generator = torch.Generator().manual_seed(self.seed)
        self.world.reset(torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None])

    def state(self) -> dict:
        with self.lock:
            return self._state()

    def _state(self) -> dict:
        return {"frame": len(self.actions), "num_actions": self.world.num_actions, "actions": self.actions[-64:],
                "kept_frames": len(self.frames)}

    def step(self, action) -> dict:
        if not isinstance(action, int) or isinstance(action, bool) or not 0 <= action < self.world.num_actions:
            raise HttpError(400, f"action must be an integer in 0..{self.world.num_actions - 1}, got {action!r}")
        from jobs.play import to_uint8

        with self.lock:
            frame = self.world.step(torch.tensor([action]), self.generator)  # (1, C, H, W)
            self.frames = [*self.frames[-(MAX_KEPT_FRAMES - 1):], to_uint8(frame[0])]
            self.actions.append(action)
            return self._state()

    def reset(self) -> dict:
        with self.lock:
            self._start(self.start_image)
            return self._state()

    def upload(self, data_url) -> dict:
        """A new start image from a data: URL (PNG, JPEG, ...), fitted into 160x90."""
        from jobs.play import fit_image

        image = decode_image(data_url)
        with self.lock:
            self._start(fit_image(image))
            return self._state()

    def frame_png(self, index: str) -> bytes:
        """Frame `index` of the rollout (0 = the start image) as a PNG, while it is kept."""
        from evals.report import png_bytes

        with self.lock:
            try:
                number = int(index)
            except ValueError:
                raise HttpError(400, f"frame must be an integer, got {index!r}") from None
            first = len(self.actions) + 1 - len(self.frames)  # the number of the oldest kept frame
            if not first <= number <= len(self.actions):
                raise HttpError(404, f"frame {number} is not kept (frames {first}..{len(self.actions)} are)")
            return png_bytes(self.frames[number - first])

    def rollout_gif(self) -> bytes:
        from jobs.rollout import gif_bytes

        with self.lock:
            frames = np.stack(self.frames)
        return gif_bytes(frames)


def decode_image(data_url) -> np.ndarray:
    """(h, w, 3) uint8 RGB from a data: URL; its size is checked from the header first."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data_url, str) or not data_url.startswith("data:image/") or "," not in data_url:
        raise HttpError(400, "image must be a data:image/... URL")
    try:
        raw = base64.b64decode(data_url.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > MAX_UPLOAD_PIXELS:
                raise HttpError(413, f"image of {image.width}x{image.height} is over {MAX_UPLOAD_PIXELS} pixels")
            return np.asarray(image.convert("RGB"))
    except (binascii.Error, UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise HttpError(400, f"not a readable image: {error}") from None


def play_page(session: PlaySession) -> Page:
    """The play page's routes over a session."""

    def body(request: Request) -> dict:
        return request.body if isinstance(request.body, dict) else {}

    routes = {
        ("GET", "/api/state"): lambda request: session.state(),
        ("POST", "/api/step"): lambda request: session.step(body(request).get("action")),
        ("POST", "/api/reset"): lambda request: session.reset(),
        ("POST", "/api/upload"): lambda request: session.upload(body(request).get("image")),
        ("GET", "/api/frame"): lambda request: Response(session.frame_png(request.query.get("n", "")), "image/png"),
        ("GET", "/api/rollout.gif"): lambda request: Response(session.rollout_gif(), "image/gif"),
    }
    return Page(static_folder("play"), routes, title="play")


def serve(world, start_image: np.ndarray, port: int = 8771, seed: int = 0) -> None:
    """Serve the play page in the foreground until Ctrl-C."""
    server = PageServer(play_page(PlaySession(world, start_image, seed)), port=port)
    print(f"play the world at {server.url} (Ctrl-C stops)", flush=True)
    server.serve_until_interrupted()
