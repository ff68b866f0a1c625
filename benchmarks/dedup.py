"""Near-duplicate removal (pipeline/dedup.py): the partitioned LSH search against the exact
all-pairs search on the same embeddings, in CPU time, with the LSH's recall of the exact pairs.

    .venv/bin/python benchmarks/dedup.py                   # 20,000 clips (exact peer too) and 200,000
    .venv/bin/python benchmarks/dedup.py --clips 20000 --large 0

Embeddings are synthetic but shaped like a real corpus: 128-d, clustered (a few hundred
"levels", clips of one level at cosine distance ~0.2-0.4 from each other) with 5% planted
near copies (cosine distance ~0.01, a re-upload); the threshold is 0.05.
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.dedup import BucketPartitions, DedupConfig, pair_recall, partition_pairs, resolve  # noqa: E402
from schemas import ids  # noqa: E402
from schemas.embeddings import embeddings_table  # noqa: E402


def corpus(clips: int, dim: int = 128, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip ids, unit embeddings (clips, dim) and scores; the last 5% are near copies of others."""
    rng = np.random.default_rng(seed)
    originals = clips - clips // 20
    centres = rng.standard_normal((max(1, clips // 100), dim))
    vectors = centres[rng.integers(len(centres), size=originals)] + 0.45 * rng.standard_normal((originals, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    copied = rng.integers(originals, size=clips - originals)
    copies = vectors[copied] + 0.14 / np.sqrt(dim) * rng.standard_normal((len(copied), dim))
    embeddings = np.concatenate([vectors, copies / np.linalg.norm(copies, axis=1, keepdims=True)]).astype(np.float32)
    clip_ids = [ids.clip_id(f"video-{index // 50}", index % 50 * 160, index % 50 * 160 + 160) for index in range(clips)]
    return clip_ids, embeddings, rng.random(clips).astype(np.float32)


def partitioned(clip_ids, embeddings, scores, config: DedupConfig) -> tuple[set, dict, float]:
    start = time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        partitions = BucketPartitions(pathlib.Path(folder), config, config.partitions)
        for first in range(0, len(clip_ids), 5000):  # a video part at a time
            rows = [{"clip_id": clip, "video_id": "v", "quality_score": score, "embedding": vector}
                    for clip, score, vector in zip(clip_ids[first : first + 5000], scores[first:], embeddings[first:])]  # fmt: skip
            partitions.add(embeddings_table(rows))
        pairs, found_scores = set(), {}
        for path in partitions.close():
            found, more = partition_pairs(path, config)
            pairs |= found
            found_scores.update(more)
    decisions = resolve(found_scores, pairs)
    return pairs, decisions, time.process_time() - start


def exact(clip_ids, embeddings, config: DedupConfig, block: int = 2048) -> tuple[set, float]:
    start = time.process_time()
    pairs = set()
    for first in range(0, len(embeddings), block):
        distance = 1.0 - embeddings[first : first + block] @ embeddings.T
        for i, j in zip(*np.nonzero(distance <= config.max_cosine_distance)):
            if first + i < j:
                pairs.add((min(clip_ids[first + i], clip_ids[j]), max(clip_ids[first + i], clip_ids[j])))
    return pairs, time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20_000, help="corpus for the LSH vs exact comparison")
    parser.add_argument("--large", type=int, default=200_000, help="a larger corpus, LSH only (0: skip)")
    options = parser.parse_args()
    config = DedupConfig(enabled=True, max_cosine_distance=0.05, hash_bits=10, hash_tables=10, partitions=16)
    print(f"config: {config}; recall of a pair at the threshold (formula): {pair_recall(config):.3f}")
    clip_ids, embeddings, scores = corpus(options.clips)
    truth, exact_s = exact(clip_ids, embeddings, config)
    found, decisions, lsh_s = partitioned(clip_ids, embeddings, scores, config)
    print(f"{options.clips} clips: exact all pairs {exact_s:.2f} CPU-s ({len(truth)} pairs); "
          f"partitioned LSH {lsh_s:.2f} CPU-s ({len(found & truth)}/{len(truth)} pairs found, "
          f"{len(decisions)} clips dropped); {options.clips / lsh_s:,.0f} clips/s per core; LSH/exact time {lsh_s / exact_s:.2f}")  # fmt: skip
    if options.large:
        clip_ids, embeddings, scores = corpus(options.large, seed=1)
        found, decisions, lsh_s = partitioned(clip_ids, embeddings, scores, config)
        print(f"{options.large} clips: partitioned LSH {lsh_s:.2f} CPU-s ({len(decisions)} clips dropped of "
              f"{options.large // 20} planted copies); {options.large / lsh_s:,.0f} clips/s per core; "
              f"exact all pairs would be ~{exact_s * (options.large / options.clips) ** 2:.0f} CPU-s (quadratic)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
