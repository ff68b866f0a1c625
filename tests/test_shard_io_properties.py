"""Property tests of the shard reader and sample decoders (schemas/shard_io.py, schemas/shard.py,
schemas/token_shard.py): random bytes, mutated tars, mutated fields and hostile metadata give
samples that decode to the spec or ShardError, never another exception."""

import functools
import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import ids
from schemas import shard as clip_spec
from schemas import token_shard as token_spec
from schemas.shard_io import ShardError, ShardWriter, read_samples

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@functools.cache
def clip_sample() -> dict:
    frames = np.random.default_rng(0).integers(0, 255, (2, 90, 160, 3), np.uint8)
    meta = {"clip_id": ids.clip_id("v", 0, 20), "video_id": "v", "scene_index": 0, "start_frame": 0, "end_frame": 20,
            "start_s": 0.0, "end_s": 2.0, "n_frames": 2, "fps": 10, "width": 160, "height": 90, "quality_score": 0.5,
            "pipeline_version": "test"}  # fmt: skip
    return clip_spec.encode_sample(frames, meta)


@functools.cache
def token_sample() -> dict:
    meta = {"clip_id": ids.clip_id("v", 0, 20), "video_id": "v", "n_frames": 3, "grid_height": 2, "grid_width": 3,
            "num_codes": 16, "num_actions": 4, "tokenizer_checkpoint": "t", "lam_checkpoint": "l", "source_shard": "s.tar",
            "source_spec_version": "1"}  # fmt: skip
    tokens = np.arange(18, dtype=np.uint16).reshape(3, 2, 3) % 16
    return token_spec.encode_token_sample(tokens, np.array([1, 2], np.uint8), meta)


@functools.cache
def shard_bytes() -> bytes:
    buffer = io.BytesIO()
    with ShardWriter(buffer) as writer:
        writer.write(clip_sample())
        writer.write({**token_sample(), "__key__": ids.clip_id("v", 20, 40)})
    return buffer.getvalue()


def decode_everything(data: bytes) -> None:
    """Read `data` as a shard and decode each sample as a clip and as a token sample; only
    ShardError may come out, and what decodes must fit the spec."""
    try:
        for sample in read_samples(io.BytesIO(data), "fuzz.tar"):
            decode_both(sample)
    except ShardError:
        pass


def decode_both(sample: dict) -> None:
    try:
        frames, meta = clip_spec.decode_sample(sample)
        assert frames.shape == (meta["n_frames"], 90, 160, 3) and frames.dtype == np.uint8
    except ShardError:
        pass
    try:
        tokens, actions, meta = token_spec.decode_token_sample(sample)
        assert tokens.shape[0] == meta["n_frames"] == len(actions) + 1
    except ShardError:
        pass


def mutate(data: st.DataObject, raw: bytes, max_steps: int = 6) -> bytes:
    seed = bytearray(raw)
    for _ in range(data.draw(st.integers(1, max_steps))):
        if not seed:
            break
        position = data.draw(st.integers(0, len(seed) - 1))
        action = data.draw(st.sampled_from(["byte", "octal", "insert", "delete", "cut"]))
        if action == "byte":
            seed[position] = data.draw(st.integers(0, 255))
        elif action == "octal":  # a tar size or checksum digit, still a digit
            seed[position : position + 1] = data.draw(st.sampled_from([b"0", b"7", b"\x80", b" "]))
        elif action == "insert":
            seed[position:position] = data.draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del seed[position : position + data.draw(st.integers(1, 600))]
        else:
            del seed[position:]
    return bytes(seed)


@SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    """Arbitrary bytes read as a shard: ShardError or nothing."""
    decode_everything(data)


@SETTINGS
@given(st.data())
def test_mutated_shard(data):
    """A valid shard (a clip and a token sample) with bytes changed, inserted, removed or cut."""
    decode_everything(mutate(data, shard_bytes()))


@SETTINGS
@given(st.data(), st.sampled_from(["frames.png", "json", "tokens.npy", "actions.npy"]))
def test_mutated_fields(data, field):
    """A sample with one field's bytes mutated: decodes to the spec or ShardError."""
    sample = clip_sample() if field in ("frames.png",) else token_sample()
    if field == "json":
        sample = data.draw(st.sampled_from([clip_sample(), token_sample()]))
    decode_both({**sample, field: mutate(data, sample[field], max_steps=3)})


@settings(SETTINGS, max_examples=100)
@given(st.sampled_from(["clip", "token"]), st.data())
def test_hostile_metadata_values(kind, data):
    """Metadata with fields replaced by arbitrary JSON values (huge ints, nesting, wrong types),
    dropped or added: decodes to the spec or ShardError."""
    sample = clip_sample() if kind == "clip" else token_sample()
    meta = json.loads(sample["json"])
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from([*meta, "extra"]))
        if data.draw(st.booleans()):
            meta[name] = data.draw(JSON_VALUES)
        else:
            meta.pop(name, None)
    decode_both({**sample, "json": json.dumps(meta).encode()})
