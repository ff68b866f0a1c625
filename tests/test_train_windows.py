import dataclasses
import io
import json
import itertools

import numpy as np
import pytest
import torch
import webdataset

from schemas import ids
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.shard_io import ShardError, iter_samples, list_shards
from train.windows import ClipWindows, DataConfig, TokenWindows, shards_of_rank, window_loader

CONFIG = DataConfig(window_frames=4, batch_size=3, shuffle_block_clips=3, interleave_shards=2, loader_processes=0)


def clips_by_key(shards):
    return {sample["__key__"]: clip_spec.decode_sample(sample)[0] for path in shards for sample in iter_samples(path)}


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def find_window(window, clips):
    """(clip key, start frame) of the clip span equal to this window, or None."""
    for key, frames in clips.items():
        for start in range(len(frames) - len(window) + 1):
            if np.array_equal(frames[start : start + len(window)], window):
                return key, start
    return None


def test_reader_matches_webdataset_on_local_paths_and_uris(clip_shards, tmp_path):
    """The tar reader yields the same samples as webdataset's own reader, from a path or a file:// URI."""
    shards = list_shards([str(clip_shards)])
    assert len(shards) == 4 and list_shards([f"file://{clip_shards}"]) == [f"file://{path}" for path in shards]
    (tmp_path / ".tmp-unfinished.tar").write_bytes(b"")
    (tmp_path / "a.tar").write_bytes(b"")
    assert list_shards([str(tmp_path)]) == [str(tmp_path / "a.tar")]
    ours = [{k: v for k, v in s.items() if k != "__url__"} for s in iter_samples(f"file://{shards[0]}")]
    theirs = [{k: v for k, v in s.items() if not k.startswith("__") or k == "__key__"}
              for s in webdataset.WebDataset(shards[0], shardshuffle=False)]
    assert ours == theirs and len(ours) == 4


def test_reader_opens_fsspec_filesystems(clip_shards):
    """A location that pyarrow cannot open itself (an fsspec memory:// folder) is listed and read."""
    import fsspec

    memory = fsspec.filesystem("memory")
    source = sorted(clip_shards.glob("*.tar"))[0]
    memory.pipe("/genie-test/shard-a.tar", source.read_bytes())
    shards = list_shards(["memory:///genie-test"])
    assert shards == ["memory:///genie-test/shard-a.tar"]
    assert len(list(iter_samples(shards[0]))) == 4


def test_windows_are_consecutive_frames_of_one_clip(clip_shards):
    """Every window is T consecutive frames of a source clip, batched as (B, T, 90, 160, 3) uint8."""
    shards = list_shards([str(clip_shards)])
    clips = clips_by_key(shards)
    batches = take(window_loader(CONFIG, ClipWindows(), shards, rank=0), 4)
    for batch in batches:
        assert batch["frames"].shape == (3, 4, 90, 160, 3) and batch["frames"].dtype == torch.uint8
        for window in batch["frames"].numpy():
            assert find_window(window, clips) is not None
    starts = {find_window(w, clips) for b in batches for w in b["frames"].numpy()}
    assert len(starts) == 12, "a block's windows should not repeat"


def test_ranks_read_disjoint_shards(clip_shards):
    """Two ranks draw their windows from disjoint sets of clips, and together cover every shard."""
    shards = list_shards([str(clip_shards)])
    owned = [shards_of_rank(shards, rank, 2) for rank in range(2)]
    assert set(owned[0]).isdisjoint(owned[1]) and set(owned[0]) | set(owned[1]) == set(shards)
    seen = []
    for rank in range(2):
        clips = clips_by_key(owned[rank])
        others = clips_by_key(owned[1 - rank])
        for batch in take(window_loader(CONFIG, ClipWindows(), owned[rank], rank=rank), 3):
            for window in batch["frames"].numpy():
                assert find_window(window, clips) and not find_window(window, others)
        seen.append(clips)
    with pytest.raises(ShardError, match="at least one shard per worker"):
        shards_of_rank(shards, 0, 5)


def test_resumed_stream_continues_with_the_same_batches(clip_shards):
    """Resumed from the stream positions after batch N (two loader processes), it yields batches N, N+1, ... again."""
    config = dataclasses.replace(CONFIG, loader_processes=2)
    shards = list_shards([str(clip_shards)])
    fresh = take(window_loader(config, ClipWindows(), shards, rank=1), 36)
    positions = [None, None]
    for batch in fresh[:31]:  # an epoch is 40 windows (13.3 batches) per stream: resume inside epoch 1
        positions[int(batch["stream"])] = tuple(batch["position"].tolist())
    assert [position[0] for position in positions] == [1, 1]
    resumed = take(window_loader(config, ClipWindows(), shards, rank=1, start_batch=31, positions=positions), 5)
    for expected, got in zip(fresh[31:], resumed):
        assert torch.equal(expected["frames"], got["frames"])
    assert not torch.equal(fresh[0]["frames"], fresh[2]["frames"])


def test_corrupt_clips_and_truncated_shards_are_dropped_and_counted(clip_shards, tmp_path):
    """A clip whose PNG is garbage and a truncated shard are skipped and counted; the stream goes on."""
    source = sorted(clip_shards.glob("*.tar"))[0]
    samples = list(iter_samples(str(source)))
    with webdataset.TarWriter(str(tmp_path / "bad.tar")) as writer:
        for index, sample in enumerate(samples):
            sample = {k: v for k, v in sample.items() if k != "__url__"}
            if index == 1:
                sample[clip_spec.FRAMES_FIELD] = b"not a png"
            writer.write(sample)
    (tmp_path / "cut.tar").write_bytes(source.read_bytes()[:70_000])
    config = dataclasses.replace(CONFIG, shuffle_block_clips=20, batch_size=5)
    batches = take(window_loader(config, ClipWindows(), [str(tmp_path / "bad.tar"), str(tmp_path / "cut.tar")], 0), 2)
    assert sum(int(b["bad_samples"]) for b in batches) >= 2
    assert all(b["frames"].shape[0] == 5 for b in batches)


def test_token_windows_keep_actions_aligned_with_frames(tmp_path):
    """Token shards give (B, T, h, w) tokens and (B, T-1) actions cut from the same span."""
    n, h, w = 10, 3, 5
    tokens = np.arange(n * h * w, dtype=np.uint16).reshape(n, h, w)
    actions = np.arange(n - 1, dtype=np.uint8)
    meta = {"clip_id": ids.clip_id("v", 0, n), "video_id": "v", "n_frames": n, "grid_height": h, "grid_width": w,
            "num_codes": 1024, "num_actions": 16, "tokenizer_checkpoint": "t", "lam_checkpoint": "l",
            "source_shard": "s.tar", "source_spec_version": "1"}
    with webdataset.TarWriter(str(tmp_path / "tokens.tar")) as writer:
        writer.write(token_spec.encode_token_sample(tokens, actions, meta))
    config = dataclasses.replace(CONFIG, shuffle_block_clips=1, batch_size=2)
    batch = take(window_loader(config, TokenWindows(), [str(tmp_path / "tokens.tar")], 0), 1)[0]
    assert batch["tokens"].shape == (2, 4, h, w) and batch["actions"].shape == (2, 3)
    for window_tokens, window_actions in zip(batch["tokens"], batch["actions"]):
        start = int(window_tokens[0, 0, 0]) // (h * w)
        assert torch.equal(window_tokens, torch.from_numpy(tokens[start : start + 4].astype(np.int64)))
        assert window_actions.tolist() == list(range(start, start + 3))


def test_token_sample_rejects_pickles_and_out_of_range_codes():
    """A pickled object array or a code beyond the vocabulary is a ShardError, never unpickled."""
    meta = {"clip_id": ids.clip_id("v", 0, 2), "video_id": "v", "n_frames": 2, "grid_height": 1, "grid_width": 1,
            "num_codes": 4, "num_actions": 2, "tokenizer_checkpoint": "t", "lam_checkpoint": "l",
            "source_shard": "s.tar", "source_spec_version": "1"}
    sample = token_spec.encode_token_sample(np.zeros((2, 1, 1), np.uint16), np.zeros(1, np.uint8), meta)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ShardError, match="tokens.npy"):
        token_spec.decode_token_sample({**sample, token_spec.TOKENS_FIELD: pickled.getvalue()})
    with pytest.raises(ShardError, match="num_codes"):
        token_spec.encode_token_sample(np.full((2, 1, 1), 4, np.uint16), np.zeros(1, np.uint8), meta)
    with pytest.raises(ShardError, match="'json' is not JSON"):
        token_spec.decode_token_sample({**sample, token_spec.META_FIELD: b"{oops"})
    with pytest.raises(ShardError, match="'json' is not a JSON object"):
        token_spec.decode_token_sample({**sample, token_spec.META_FIELD: b"[1, 2]"})
    with pytest.raises(ShardError, match="'num_codes' is required"):
        token_spec.decode_token_sample({**sample, token_spec.META_FIELD: json.dumps(
            {**json.loads(sample[token_spec.META_FIELD]), "num_codes": None}).encode()})
