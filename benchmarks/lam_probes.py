"""What simple motion features of held-out world video tell of the true actions: the yardsticks
beside the LAM's NMI (benchmarks/lam_actions.py).

    python benchmarks/lam_probes.py --corpus W/corpus --split W/split.json

On `genie run`'s split (split.json) and its evaluation windows (5 frames, jobs/eval.py) it
prints NMI and many-to-one accuracy with the true actions (evals/actions.py) of:
- scroll: each transition's best global horizontal shift (the camera follows the player, so
  walking scrolls the level), as is;
- cost volume (models/motion.py, patch 16, shifts up to 12 px, what the LAM's motion_input
  sees), per-patch and pooled over patches (mean and max): a linear classifier trained on the
  training videos' transitions (supervised: an upper bound on what the features say linearly)
  and k-means with 8 clusters fitted on them (unsupervised, like the LAM's 8 codes);
- the player's true motion (motion_ceiling of lam_actions.py) on the held-out videos.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def windows(shards: list[str], corpus: pathlib.Path, count: int):
    from jobs.eval import EvalConfig, read_windows

    return read_windows(EvalConfig(tokenizer_checkpoint="", lam_checkpoint="", dynamics_checkpoint="", clips=tuple(shards),
                                   output_dir="", corpus_dir=str(corpus), window_frames=5, max_windows=count, t=1))


def scroll(frames: np.ndarray, max_shift: int = 12) -> np.ndarray:
    """(N, T, H, W, 3) uint8 -> (N, T-1) the horizontal shift s minimising the error of frame t+1[x] vs frame t[x+s]."""
    f = frames.astype(np.float32) / 255
    a, b = f[:, :-1], f[:, 1:]
    inner = slice(max_shift, f.shape[3] - max_shift)
    cost = [((b[..., inner, :] - a[..., inner.start + s:inner.stop + s, :]) ** 2).mean((-1, -2, -3))
            for s in range(-max_shift, max_shift + 1)]
    return np.stack(cost, -1).argmin(-1) - max_shift


def cost_volumes(frames: np.ndarray) -> torch.Tensor:
    """(N, T, H, W, 3) uint8 -> (N*(T-1), patches, 50): the LAM's motion input of every transition."""
    from models import motion

    video = torch.from_numpy(frames).float().div(255).permute(0, 1, 4, 2, 3) * 2 - 1
    before, after = video[:, :-1].flatten(0, 1), video[:, 1:].flatten(0, 1)
    return torch.cat([motion.cost_volume(before[i:i + 64], after[i:i + 64], 12, 16, 0.01) for i in range(0, len(before), 64)])


def linear_probe(x: torch.Tensor, y: torch.Tensor, held_out: torch.Tensor) -> np.ndarray:
    """Softmax regression on standardised features (300 Adam steps, full batch) -> held-out predictions."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    linear = torch.nn.Linear(x.shape[1], 8)
    optimizer = torch.optim.Adam(linear.parameters(), 1e-2, weight_decay=1e-3)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(linear((x - mean) / std), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return linear((held_out - mean) / std).argmax(-1).numpy()


def kmeans(x: np.ndarray, held_out: np.ndarray, k: int = 8, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means fitted on x (seed 0) -> the held-out points' clusters."""
    centres = x[np.random.default_rng(0).choice(len(x), k, replace=False)]
    for _ in range(iterations):
        nearest = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([x[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(k)])
    return ((held_out[:, None] - centres[None]) ** 2).sum(-1).argmin(1)


def main() -> None:
    from benchmarks.lam_actions import motion_ceiling
    from evals.actions import action_agreement

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=pathlib.Path, required=True)
    parser.add_argument("--split", type=pathlib.Path, required=True, help="genie run's split.json")
    parser.add_argument("--windows", type=int, default=400, help="training windows the probes are fitted on")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = json.loads(args.split.read_text())
    train, held = windows(split["train"], args.corpus, args.windows), windows(split["held_out"], args.corpus, 256)
    y_train, y_held = train.true_actions.ravel(), held.true_actions.ravel()
    known_train, known = y_train >= 0, y_held >= 0

    def row(name: str, codes: np.ndarray, num_codes: int) -> None:
        agreement = action_agreement(codes, y_held[known], num_codes, 8)
        print(json.dumps({"probe": name, "nmi": round(agreement.nmi, 3), "accuracy": round(agreement.accuracy, 3),
                          "transitions": agreement.count}), flush=True)

    shifts = scroll(held.frames).ravel()[known]
    values = sorted(set(shifts.tolist()))
    row("scroll, as is", np.array([values.index(s) for s in shifts]), len(values))
    train_volumes, held_volumes = cost_volumes(train.frames), cost_volumes(held.frames)
    features = {"per patch": lambda v: v.flatten(1), "pooled mean+max": lambda v: torch.cat([v.mean(1), v.amax(1)], 1)}
    for name, featurise in features.items():
        x, x_held = featurise(train_volumes), featurise(held_volumes)
        row(f"cost volume {name}, linear (supervised)",
            linear_probe(x[known_train], torch.from_numpy(y_train[known_train]), x_held[known]), 8)
        row(f"cost volume {name}, k-means 8", kmeans(x.numpy(), x_held[known].numpy()), 8)
    ceiling = motion_ceiling(args.corpus, set(held.video_ids))
    print(json.dumps({"probe": "player's true motion -> likeliest action (held-out videos, all their transitions)",
                      "nmi": ceiling["nmi_motion_to_likeliest_action"], "accuracy": ceiling["accuracy"],
                      "transitions": ceiling["transitions"], "nmi_motion_as_is": ceiling["nmi_motion"]}))


if __name__ == "__main__":
    main()
