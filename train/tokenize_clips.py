"""Clip shards -> token shards: a trained tokenizer's tokens and a trained LAM's actions.

The stage behind `genie tokenize` (jobs/tokenize.py runs it on Ray Data, one row per
shard). One clip shard in, one token shard (schemas/token_shard.py) of the same name out,
written atomically, so a rerun skips the shards already done and never sees a half one.

Both encoders are causal in time and were trained on windows of T frames, so a clip is
coded in windows of T frames too: tokens in windows starting at 0, T, 2T, ... (the last one
ending at the clip's end, only its new frames kept); actions in windows overlapping by one
frame (T frames give T-1 transitions), the last again ending at the clip's end. Every frame
and transition is then coded with 1..T frames of context, as in training.
"""

import dataclasses
import posixpath

import numpy as np
import pyarrow.fs as pafs
import torch

from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.manifest import STATUS_ERROR, STATUS_OK
from schemas.shard_io import ShardError, ShardWriter, atomic_output, iter_samples, resolve
from train.checkpoint import latest_checkpoint
from train.components import load_trained, video_from_frames


@dataclasses.dataclass(frozen=True)
class TokenizeConfig:
    """Which trained encoders turn clips into tokens and actions, and in what windows."""

    tokenizer_checkpoint: str  # a tokenizer checkpoint directory, or a run folder (its latest checkpoint)
    lam_checkpoint: str  # a LAM checkpoint directory, or a run folder
    window_frames: int = 16  # T the encoders were trained on: the context each frame is coded with
    batch_windows: int = 16  # windows per encoder forward


def window_starts(n: int, length: int, stride: int) -> list[int]:
    """Starts of windows of `length` frames every `stride` frames, the last ending at frame n."""
    if n <= length:
        return [0]
    starts = list(range(0, n - length, stride))
    return starts + [n - length]


class ClipTokenizer:
    """Ray Data UDF: {'shard': clip shard URI} -> {'shard', 'token_shard', 'status', 'reason', 'clips', 'dropped'}."""

    def __init__(self, config: TokenizeConfig, output: str):
        self.config = config
        self.output = output.rstrip("/")
        self.device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        self.tokenizer_path = str(latest_checkpoint(config.tokenizer_checkpoint))
        self.lam_path = str(latest_checkpoint(config.lam_checkpoint))
        self.tokenizer = load_trained(self.tokenizer_path, "tokenizer").to(self.device)
        self.lam = load_trained(self.lam_path, "lam").to(self.device)
        limit = min(self.tokenizer.config.max_frames, self.lam.config.max_frames)
        if not 2 <= config.window_frames <= limit:
            raise ValueError(f"window_frames {config.window_frames} must be in 2..{limit} (the encoders' max_frames)")

    def __call__(self, row: dict) -> dict:
        source = row["shard"]
        target = f"{self.output}/{posixpath.basename(source)}"
        result = {"shard": source, "token_shard": target, "status": STATUS_OK, "reason": "", "clips": 0, "dropped": 0}
        filesystem, target_path = resolve(target)
        if filesystem.get_file_info(target_path).type == pafs.FileType.File:
            return result | {"reason": "already tokenized"}
        try:
            with atomic_output(target) as stream, ShardWriter(stream) as archive:
                result["clips"], result["dropped"] = self._tokenize_shard(source, archive)
        except Exception as error:  # noqa: BLE001 - one bad shard is its row's error, never the job's
            reason = str(error) if isinstance(error, (ShardError, OSError)) else f"{type(error).__name__}: {error}"
            return result | {"status": STATUS_ERROR, "reason": reason}
        return result

    def _tokenize_shard(self, source: str, archive: ShardWriter) -> tuple[int, int]:
        """(clips written, clips dropped); a sample that breaks the spec is dropped and counted."""
        written = dropped = 0
        for sample in iter_samples(source):
            try:
                frames, meta = clip_spec.decode_sample(sample)
            except ShardError:
                dropped += 1
                continue
            if len(frames) < 2:
                dropped += 1
                continue
            tokens, actions = self.encode_clip(frames)
            token_meta = {
                "clip_id": meta["clip_id"], "video_id": meta["video_id"], "n_frames": len(frames),
                "grid_height": tokens.shape[1], "grid_width": tokens.shape[2],
                "num_codes": self.tokenizer.config.quantizer.num_codes,
                "num_actions": self.lam.config.quantizer.num_codes,
                "tokenizer_checkpoint": self.tokenizer_path, "lam_checkpoint": self.lam_path,
                "source_shard": posixpath.basename(source), "source_spec_version": meta["spec_version"],
            }
            archive.write(token_spec.encode_token_sample(tokens, actions, token_meta))
            written += 1
        return written, dropped

    @torch.no_grad()
    def encode_clip(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames (n, H, W, C) uint8 -> tokens (n, h, w) uint16, actions (n-1,) uint8."""
        n, T = len(frames), self.config.window_frames
        video = video_from_frames(torch.from_numpy(frames)[None], self.device)[0]  # (n, C, H, W)
        tokens = np.zeros((n, *self.tokenizer.config.grid), token_spec.TOKEN_DTYPE)
        token_starts = window_starts(n, T, T)
        _fill(tokens, token_starts, self._in_batches(self.tokenizer.encode, video, token_starts, T))
        actions = np.zeros(n - 1, token_spec.ACTION_DTYPE)
        action_starts = window_starts(n, T, T - 1)
        _fill(actions, action_starts, self._in_batches(self.lam.infer_actions, video, action_starts, T))
        return tokens, actions

    def _in_batches(self, encode, video: torch.Tensor, starts: list[int], T: int) -> list[np.ndarray]:
        """encode() over the windows video[s:s+T] for s in starts, batch_windows at a time."""
        outputs = []
        for first in range(0, len(starts), self.config.batch_windows):
            batch = torch.stack([video[s : s + T] for s in starts[first : first + self.config.batch_windows]])
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                outputs.extend(encode(batch).cpu().numpy())
        return outputs


def _fill(target: np.ndarray, starts: list[int], windows: list[np.ndarray]) -> None:
    """Write each window's outputs at its start, keeping the first value of overlapping frames."""
    done = 0
    for start, values in zip(starts, windows):
        end = start + len(values)
        if end > done:
            target[done:end] = values[done - start :]
            done = end
