"""Training the quality model (models/quality.py) from labelled clips: plain PyTorch, one process.

The paper's rule: clips labelled 5 are good, 1 bad, 2-4 left out (`positive_scores`,
`negative_scores`). Clips are split by source video (every clip of a video on one side) into
train, validation and test, or with `folds` into test and cross-validation folds (each
fold's clips scored by a model trained on the other folds; the model kept is trained on all
of them). The threshold on P(good) is chosen on the validation scores: the lowest that
reaches `min_precision`, so recall is as high as that precision allows, but not so high that
less than `min_recall` of the good clips stay kept. Precision, recall and ROC AUC are
reported on test, which nothing was fitted or chosen on.

Augmentation (train/quality_augment.py), because the labelled footage is not all footage:
colour on every clip; scale (a zoom and a horizontal stretch, as a 4:3 or 8:7 game shown
full-frame looks) only on clips whose label does not hang on the frame's edges
(`geometric_scores`): a crop can cut a face-cam's corner or a letterbox's bars out, which
would leave a "bad" label on a clean-looking picture; `synthetic_letterbox`, to show the rule
"letterboxed is bad" in every look; `synthetic_hud`, a game HUD on clips of every label.

With the "cnn" encoder everything is trained end to end; with "open_clip" the tower is frozen
and only the projection and head learn.
"""

import dataclasses
import hashlib
import time

import numpy as np
import torch
import torch.nn.functional as F

from models.quality import QualityModel, QualityModelConfig, model_frames, pick_frames, to_tensor
from schemas.config import ConfigError
from train.quality_augment import augment, hud_some, letterbox_some
from train.quality_threshold import choose_threshold, figures


@dataclasses.dataclass(frozen=True)
class QualityTrainConfig:
    """How the quality model is trained from labels."""

    # Labels counted as good and as bad; others are left out (the paper: 5 against 1).
    positive_scores: tuple[int, ...] = (5,)
    negative_scores: tuple[int, ...] = (1,)
    # Fractions of source videos held out for choosing the threshold and for the test figures.
    validation_fraction: float = 0.15
    test_fraction: float = 0.25
    # > 1: the threshold is chosen by cross-validation instead of on a validation split: the
    # non-test videos are cut into `folds` parts, each scored by a model trained on the others,
    # and the model kept is trained on all of them (validation_fraction is then unused).
    folds: int = 0
    # The threshold: the lowest whose validation precision reaches min_precision (0 = `threshold`),
    # lowered where needed so that min_recall of the good validation clips stay kept: a threshold
    # set by a few bad clips that score like good ones would drop good footage the labels never
    # showed (which scores a little lower than the labelled footage).
    min_precision: float = 0.97
    min_recall: float = 0.0
    # A cap on the chosen threshold (1 = none): validation scores of models trained on part of
    # the labels can put bad clips at P(good) ~ 1, dragging a precision-driven threshold into
    # the good clips' tail, where unlabelled good footage (scoring a little lower) is dropped.
    max_threshold: float = 1.0
    threshold: float = 0.5
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    # Frames kept per clip in memory; each step picks `frames` of them at random.
    candidate_frames: int = 8
    # Labels whose clips may be zoomed and stretched (see the module docstring).
    geometric_scores: tuple[int, ...] = (1, 4, 5)
    # Share of good training clips turned into letterboxed ones labelled bad (0 = none).
    synthetic_letterbox: float = 0.0
    # Share of training clips, of every label, given a game HUD over the top (train/quality_augment.py).
    synthetic_hud: float = 0.0
    # Largest zoom and horizontal stretch of the scale augmentation (1 = none).
    max_zoom: float = 1.4
    max_stretch: float = 1.8
    # Share of clips whose colours are rotated about the grey axis by a random angle (a hue
    # rotation: a blue water or a red castle background from a level's usual palette).
    hue_rotation: float = 0.0
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def __post_init__(self):
        if not self.positive_scores or not self.negative_scores or set(self.positive_scores) & set(self.negative_scores):
            raise ConfigError("positive_scores and negative_scores must be non-empty and disjoint", "positive_scores")
        if not (0 < self.test_fraction < 1 and 0 <= self.validation_fraction < 1 and self.test_fraction + self.validation_fraction < 1):
            raise ConfigError("need 0 < test_fraction, 0 <= validation_fraction, and their sum < 1", "test_fraction")
        if self.epochs < 1 or self.batch_size < 2 or self.candidate_frames < 1:
            raise ConfigError("epochs >= 1, batch_size >= 2 and candidate_frames >= 1 are required", "epochs")
        if not (0 <= self.min_precision <= 1 and 0 <= self.min_recall <= 1 and 0 < self.max_threshold <= 1):
            raise ConfigError("min_precision and min_recall must lie in [0, 1], max_threshold in (0, 1]", "max_threshold")
        if not (0 <= self.synthetic_letterbox <= 1 and 0 <= self.synthetic_hud <= 1 and 0 <= self.hue_rotation <= 1):
            raise ConfigError("synthetic_letterbox, synthetic_hud and hue_rotation are shares in [0, 1]", "synthetic_hud")
        if self.folds < 0 or self.folds == 1:
            raise ConfigError(f"folds must be 0 (a validation split) or >= 2, got {self.folds}", "folds")


@dataclasses.dataclass
class LabelledClips:
    """Clips in memory: their 1-5 scores, source video ids, M candidate frames each for
    training, and the scorer's own input for evaluation (None: taken from the candidates)."""

    clip_ids: list[str]
    video_ids: list[str]
    scores: np.ndarray  # (N,) int
    frames: np.ndarray  # (N, M, H, W, 3) uint8
    model_frames: np.ndarray | None = None  # (N, K, h, w, 3) uint8, models/quality.py model_frames


def _places(video_ids: list[str], seed: int) -> np.ndarray:
    """A place in [0, 1) for each clip, from a hash of its source video: a video's clips stay
    together and the same video lands in the same place every run."""
    def position(video_id: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}:{video_id}".encode()).digest()[:8], "big") / 2**64

    return np.array([position(video_id) for video_id in video_ids])


def split_by_video(video_ids: list[str], validation_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Each clip's split (0 train, 1 validation, 2 test), by its source video."""
    places = _places(video_ids, seed)
    return np.where(places < test_fraction, 2, np.where(places < test_fraction + validation_fraction, 1, 0))


def folds_by_video(video_ids: list[str], folds: int, test_fraction: float, seed: int) -> np.ndarray:
    """Each clip's cross-validation fold (0..folds-1), or -1 for a test clip, by its source
    video; the test clips are split_by_video's."""
    places = _places(video_ids, seed)
    fold = np.minimum(((places - test_fraction) / (1 - test_fraction) * folds).astype(int), folds - 1)
    return np.where(places < test_fraction, -1, fold)


def model_input(frames: np.ndarray, count: int, size: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    """frames (B, M, H, W, 3) uint8 -> (B, count, 3, h, w) in [0, 1]: `count` of the M
    candidates, at random in order when `generator` is given, else evenly spaced."""
    B, M = frames.shape[:2]
    if generator is None:
        picks = np.tile(((np.arange(count) + 0.5) * M / count).astype(int), (B, 1))
    else:
        picks = np.sort(torch.stack([torch.randperm(M, generator=generator)[:count] for _ in range(B)]).numpy(), axis=1) \
            if count <= M else torch.randint(M, (B, count), generator=generator).sort(dim=1).values.numpy()
    chosen = frames[np.arange(B)[:, None], picks]  # (B, count, H, W, 3)
    tensor = torch.from_numpy(np.ascontiguousarray(chosen)).permute(0, 1, 4, 2, 3).float().div_(255.0)
    if generator is None and tensor.shape[-2:] != size:
        tensor = F.interpolate(tensor.flatten(0, 1), size=size, mode="area").view(B, count, 3, *size)
    return tensor


def predict(model: QualityModel, clips: LabelledClips, index: np.ndarray | None = None,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """P(good) (N,) and embeddings (N, D) of the clips at `index` (None: all), as the learned
    scorer sees them."""
    config = model.config
    index = np.arange(len(clips.scores)) if index is None else index
    model.eval()
    probabilities, embeddings = [], []
    with torch.inference_mode():
        for start in range(0, len(index), batch_size):
            batch = index[start:start + batch_size]
            if clips.model_frames is not None:
                inputs = to_tensor(clips.model_frames[batch])
            else:
                inputs = model_input(clips.frames[batch], config.frames, (config.height, config.width), None)
            logits, embedding = model(inputs)
            probabilities.append(torch.sigmoid(logits).numpy())
            embeddings.append(embedding.numpy())
    if not probabilities:
        return np.zeros(0), np.zeros((0, config.embed_dim), np.float32)
    return np.concatenate(probabilities), np.concatenate(embeddings)


def binary_labels(scores: np.ndarray, config: QualityTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(used, label): which clips the rule counts, and 1 for good, 0 for bad."""
    good, bad = np.isin(scores, config.positive_scores), np.isin(scores, config.negative_scores)
    return good | bad, good.astype(np.int64)


def train_quality_model(clips: LabelledClips, model_config: QualityModelConfig, config: QualityTrainConfig,
                        log=print) -> tuple[QualityModel, dict]:
    """Train on the rule's clips of the train split (of every non-test video, with folds);
    (model, info) with the chosen threshold and the validation and test figures."""
    if config.threads:
        torch.set_num_threads(config.threads)
    started, cpu_started = time.monotonic(), time.process_time()
    used, labels = binary_labels(clips.scores, config)
    probabilities = np.zeros(len(labels))
    if config.folds > 1:
        fold = folds_by_video(clips.video_ids, config.folds, config.test_fraction, config.seed)
        in_test, train_index = fold < 0, np.flatnonzero(used & (fold >= 0))
        validation = train_index  # scored out of fold
        for part in range(config.folds):
            log(f"fold {part + 1}/{config.folds}")
            held = train_index[fold[train_index] == part]
            model, _ = fit(clips, labels, train_index[fold[train_index] != part], model_config, config, config.seed + 1 + part, log)
            probabilities[held] = predict(model, clips, held)[0]
        log("all folds")
    else:
        split = split_by_video(clips.video_ids, config.validation_fraction, config.test_fraction, config.seed)
        in_test, train_index, validation = split == 2, np.flatnonzero(used & (split == 0)), np.flatnonzero(used & (split == 1))
    model, steps = fit(clips, labels, train_index, model_config, config, config.seed, log)
    if config.folds <= 1 and len(validation):
        probabilities[validation] = predict(model, clips, validation)[0]
    threshold = choose_threshold(labels[validation], probabilities[validation], config.min_precision, config.threshold,
                                 config.min_recall, config.max_threshold)
    test = np.flatnonzero(used & in_test)
    test_probabilities = predict(model, clips, test)[0]
    info = {
        "threshold": threshold,
        "rule": {"positive_scores": list(config.positive_scores), "negative_scores": list(config.negative_scores)},
        "train": {"clips": int(len(train_index)), "steps": steps, "folds": config.folds, "wall_s": round(time.monotonic() - started, 1),
                  "cpu_s": round(time.process_time() - cpu_started, 1)},
        "validation": figures(labels[validation], probabilities[validation], threshold),
        # the validation scores, for choosing another threshold (LearnedConfig.threshold) knowingly
        "validation_scores": {name: np.round(np.sort(probabilities[validation][labels[validation] == value]), 4).tolist()
                              for name, value in (("good", 1), ("bad", 0))},
        "test": figures(labels[test], test_probabilities, threshold),
        "test_videos": sorted({clips.video_ids[i] for i in np.flatnonzero(in_test)}),
    }  # fmt: skip
    return model, info


def fit(clips: LabelledClips, labels: np.ndarray, train_index: np.ndarray, model_config: QualityModelConfig,
        config: QualityTrainConfig, seed: int, log) -> tuple[QualityModel, int]:
    """A model trained on the clips at train_index (labels: 1 good, 0 bad), and its steps."""
    if len(set(labels[train_index])) < 2:
        raise ValueError(f"the train split needs good and bad clips under the rule; it has {len(train_index)} clips, "
                         f"{int(labels[train_index].sum())} good")  # fmt: skip
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    started = time.monotonic()
    model = QualityModel(model_config)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.epochs * max(1, len(train_index) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate, total_steps=steps, pct_start=0.15)
    positives = labels[train_index].mean()
    weight = torch.tensor((1 - positives) / positives)  # balance the classes
    size = (model_config.height, model_config.width)
    geometric_ok = np.isin(clips.scores, config.geometric_scores)
    step = 0
    for epoch in range(config.epochs):
        model.train()
        order = train_index[torch.randperm(len(train_index), generator=generator).numpy()]
        total = 0.0
        for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
            batch = order[start:start + config.batch_size]
            full = model_input(clips.frames[batch], model_config.frames, size, generator)
            targets, geometric = torch.from_numpy(labels[batch]).float(), torch.from_numpy(geometric_ok[batch])
            if config.synthetic_hud > 0:
                full = hud_some(full, clips.scores[batch], config.synthetic_hud, generator)
            if config.synthetic_letterbox > 0:
                full, targets, geometric = letterbox_some(full, targets, geometric, config.synthetic_letterbox, generator)
            inputs = augment(full, geometric, size, config, generator)
            logits, _ = model(inputs)
            loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            total += float(loss.detach()) * len(batch)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {total / max(1, len(order)):.4f} ({time.monotonic() - started:.0f} s)")
    return model, step


def load_labelled_clips(runs: list[str], labels: "pa.Table", candidate_frames: int,
                        model_config: QualityModelConfig) -> LabelledClips:
    """The labelled clips found in the shards of ingest runs (their manifests say which shard
    holds each): `candidate_frames` evenly spaced frames of each, and the model's input as the
    scorer makes it. Labels of clips no run kept are skipped."""
    import pathlib

    import pyarrow.parquet as pq

    from schemas.manifest import RUN_CLIPS_FILE, RUN_SHARDS_DIR
    from schemas.shard import decode_sample
    from schemas.shard_io import iter_samples

    score_of = dict(zip(labels.column("clip_id").to_pylist(), labels.column("score").to_pylist()))
    clip_ids, video_ids, scores, frames, inputs = [], [], [], [], []
    for run in runs:
        manifest = pq.read_table(pathlib.Path(run) / RUN_CLIPS_FILE, columns=["clip_id", "video_id", "shard", "status"])
        shards = sorted({shard for shard, clip_id, status in zip(*(manifest.column(n).to_pylist() for n in ("shard", "clip_id", "status")))
                         if status == "ok" and clip_id in score_of})  # fmt: skip
        for shard in shards:
            path = pathlib.Path(run) / RUN_SHARDS_DIR / shard
            for sample in iter_samples(str(path)):
                if sample["__key__"] not in score_of:
                    continue
                clip_frames, meta = decode_sample(sample)
                clip_ids.append(meta["clip_id"])
                video_ids.append(meta["video_id"])
                scores.append(score_of[meta["clip_id"]])
                frames.append(pick_frames(clip_frames, candidate_frames))
                inputs.append(model_frames(clip_frames, model_config))
    if not frames:
        raise ValueError(f"no labelled clip was found in the shards of {runs}")
    return LabelledClips(clip_ids, video_ids, np.array(scores), np.stack(frames), np.stack(inputs))
