"""The LAM's objective by measurement: the paper's against the project's departure, on
offline-world video, scored by agreement of latent with true actions on held-out videos.

    python benchmarks/lam_actions.py [--shards DIR --corpus DIR] [--steps 300 1000] [--seeds 0 1]
    python benchmarks/lam_actions.py --shards DIR --corpus DIR --ceiling

Variants (models/lam.py):
- paper: every transition through the quantiser, the action = the encoder's summary of the
  next frame, quantiser loss weighted as in VQ-VAE (1);
- departure: half the transitions reach the decoder unquantised, the action = the change of
  the summary, quantiser loss weighted per element (~7e-4).
- the rest (VARIANTS): the departure per transition (encoder and decoder without temporal
  attention) with the motion options of models/motion.py (cost-volume input, shift-kernel
  decoder) and change_weight, as benchmarks/RESULTS.md "Motion priors" measured them;
  "scroll": the departure with the row-band motion input and the action-driven band shift
  (scroll-paper: the paper's objective with them; scroll-patch: per-patch action shifts).
Each trains the tiny LAM (models/configs/tiny.toml's sizes) with the real loop
(train/loop.py, no Ray) on the training videos' clip shards, then infers actions on windows
of the held-out videos (split by source video, as `genie run` does; --split reads genie
run's own split.json) and prints NMI and
many-to-one accuracy with the world's true actions (evals/actions.py, evals/world_truth.py)
and the held-out LAM PSNR through the codes, after each of --steps of one run. --ceiling
instead prints what the player's true motion tells of the true action (motion_ceiling).
Without --shards it renders and ingests an offline world first (`genie run` with
ingest_only, under --work).
"""

import argparse
import json
import math
import pathlib
import re
import resource
import sys
import tempfile
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# [lam] keys of each variant; "lam.encoder."/"lam.decoder."-prefixed keys go to those tables
PAPER = {"action": '"frame"', "quantizer_loss_weight": "1.0", "unquantized_fraction": "0.0"}
DEPARTURE = {"action": '"change"', "quantizer_loss_weight": '"per_element"', "unquantized_fraction": "0.5"}
PER_TRANSITION = {"lam.encoder.temporal": "false", "lam.decoder.temporal": "false"}
MOTION = {"motion_input": "true", "decoder_output": '"shift"'}
SCROLL = {"band_motion_input": "true", "action_shift": '"band"'}
VARIANTS = {
    "paper": PAPER,
    "departure": DEPARTURE,
    "departure-pairwise": DEPARTURE | PER_TRANSITION,
    "motion-in": DEPARTURE | PER_TRANSITION | {"motion_input": "true"},
    "motion": DEPARTURE | PER_TRANSITION | MOTION,
    "motion-frame": DEPARTURE | PER_TRANSITION | MOTION | {"action": '"frame"'},
    "pairwise-weighted": DEPARTURE | PER_TRANSITION | {"change_weight": "20.0"},
    "motion-weighted": DEPARTURE | PER_TRANSITION | MOTION | {"action": '"frame"', "change_weight": "20.0"},
    "scroll": DEPARTURE | SCROLL,
    "scroll-paper": PAPER | SCROLL,
    "scroll-patch": DEPARTURE | SCROLL | {"action_shift": '"patch"'},
}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (loader processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ingest_world(work: pathlib.Path, videos: int) -> tuple[pathlib.Path, pathlib.Path]:
    from jobs.run import RunConfig, run
    from world.corpus import CorpusConfig

    config = RunConfig(output_dir=str(work / "world"), smb_dir="", ingest_only=True,
                       corpus=CorpusConfig(seed=0, videos=videos, offtopic=0))
    run(config)
    return work / "world" / "ingest" / "shards", work / "world" / "corpus"


def set_keys(text: str, table: str, keys: dict) -> str:
    """A TOML text with the keys set (replaced or added) in [table]."""
    if not keys:
        return text
    head, header, tail = text.partition(f"[{table}]\n")
    block, next_table, tail = tail.partition("\n[")
    block = re.sub(rf"^({'|'.join(keys)}) = .*\n", "", block, flags=re.M)
    return head + header + "".join(f"{k} = {v}\n" for k, v in keys.items()) + block + next_table + tail


def models_toml(variant: dict, folder: pathlib.Path, num_codes: int | None, patch_size: int | None) -> pathlib.Path:
    """models/configs/tiny.toml with the variant's [lam] keys (and num_codes, patch_size if given)."""
    text = (ROOT / "models" / "configs" / "tiny.toml").read_text()
    keys = variant | ({"patch_size": patch_size} if patch_size else {})
    for table in ("lam.encoder", "lam.decoder"):
        text = set_keys(text, table, {k.removeprefix(table + "."): v for k, v in keys.items() if k.startswith(table + ".")})
    text = set_keys(text, "lam", {k: v for k, v in keys.items() if not k.startswith("lam.")})
    if num_codes:
        head, lam_quantizer, tail = text.partition("[lam.quantizer]\n")
        text = head + lam_quantizer + re.sub(r"^num_codes = .*$", f"num_codes = {num_codes}", tail, count=1, flags=re.M)
        text = re.sub(r"^num_actions = .*$", f"num_actions = {num_codes}", text, flags=re.M)
    path = folder / "models.toml"
    path.write_text(text)
    return path


def train_lam(models: pathlib.Path, shards: list[str], steps: list[int], seed: int, folder: pathlib.Path, args) -> pathlib.Path:
    """One run of max(steps) steps that keeps a checkpoint at each of `steps` (one learning-rate schedule)."""
    from train.context import LocalContext
    from train.loop import TrainConfig, train
    from train.metrics import MetricsConfig
    from train.optimizer import OptimConfig
    from train.windows import DataConfig

    config = TrainConfig(
        model=str(models), seed=seed,
        data=DataConfig(shards=tuple(shards), window_frames=args.window_frames, batch_size=args.batch_size,
                        shuffle_block_clips=8, loader_processes=1, seed=seed),
        optim=OptimConfig(max_steps=max(steps), lr=args.lr, warmup_steps=min(20, max(steps) // 10)),
        metrics=MetricsConfig(log_every=max(1, max(steps) // 10), checkpoint_every=math.gcd(*steps),
                              sample_every=0, tensorboard=False))
    context = LocalContext(folder / "logs", folder / "checkpoints", keep=max(steps) // math.gcd(*steps), show_progress=False)
    train("lam", config, context)
    return folder / "checkpoints"


def measure(checkpoint: pathlib.Path, held_out: list[str], corpus: pathlib.Path, args) -> dict:
    from evals.actions import action_agreement
    from jobs.eval import EvalConfig, read_windows
    from train.components import load_trained, video_from_frames
    from world.actions import N_ACTIONS

    lam = load_trained(checkpoint, "lam")
    windows = read_windows(EvalConfig(tokenizer_checkpoint="", lam_checkpoint=str(checkpoint), dynamics_checkpoint="",
                                      clips=tuple(held_out), output_dir="", corpus_dir=str(corpus),
                                      window_frames=args.window_frames, max_windows=args.windows, t=1))
    latent, psnrs = [], []
    with torch.no_grad():
        for first in range(0, len(windows.frames), 16):
            video = video_from_frames(torch.from_numpy(windows.frames[first:first + 16]), torch.device("cpu"))
            latent.append(lam.infer_actions(video))
            psnrs.append(float(lam(video).metrics["psnr"]) * len(video))
    agreement = action_agreement(torch.cat(latent).numpy().ravel(), windows.true_actions.ravel(),
                                 lam.config.quantizer.num_codes, N_ACTIONS)
    return {"nmi": agreement.nmi, "accuracy": agreement.accuracy, "transitions": agreement.count,
            "codes_used": int((agreement.confusion.sum(1) > 0).sum()), "psnr_through_codes": sum(psnrs) / len(windows.frames),
            "psnr_copying_the_last_frame": copy_psnr(windows.frames)}


def copy_psnr(frames) -> float:
    """The peer: PSNR of predicting each frame as the one before it, over (N, T, H, W, 3) uint8 windows."""
    error = (frames[:, 1:].astype("float64") - frames[:, :-1]) / 255
    return float(-10 * torch.log10(torch.tensor((error ** 2).mean())))


def motion_ceiling(corpus: pathlib.Path, videos: set[str] | None = None) -> dict:
    """What the player's true motion tells of the true action: every gameplay shot of the corpus
    replayed from its sidecar (level seed, actions), sampled every third frame (10 fps) as ingest
    does; each transition's (dx, dy) of the player, rounded to pixels, labelled with the action
    most often pressed on it, scores NMI with the true action (a) as is and (b) mapped to the
    action most common for it (an 8-code labelling no LAM can beat that sees only the motion).
    `videos`: only these video ids (default: all)."""
    from collections import Counter, defaultdict

    import numpy as np

    from evals.actions import action_agreement
    from evals.world_truth import transition_actions
    from world.game import Game
    from world.level import generate_level

    motions, labels = [], []
    for path in sorted((corpus / "truth").glob("*.json")):
        if videos is not None and path.stem not in videos:
            continue
        truth = json.loads(path.read_text())
        for segment in truth["segments"]:
            if segment["kind"] != "gameplay":
                continue
            pressed = truth["actions"][segment["start_frame"]:segment["end_frame"]]
            game, where = Game(generate_level(segment["level_seed"]), truth["fps"]), []
            for action in pressed:
                where.append((game.player.x, game.player.y))
                game.step(action)
            samples = list(range(0, len(pressed), 3))
            shot = {"actions": pressed, "segments": [{"start_frame": 0, "end_frame": len(pressed)}]}
            for (a, b), label in zip(zip(samples, samples[1:]), transition_actions(shot, samples)):
                if label >= 0:
                    motions.append((round(where[b][0] - where[a][0]), round(where[b][1] - where[a][1])))
                    labels.append(int(label))
    labels = np.array(labels)
    by_motion = defaultdict(Counter)
    for motion, label in zip(motions, labels):
        by_motion[motion][label] += 1
    ids = {motion: index for index, motion in enumerate(by_motion)}
    as_is = action_agreement(np.array([ids[m] for m in motions]), labels, len(ids), 8)
    mapped = action_agreement(np.array([by_motion[m].most_common(1)[0][0] for m in motions]), labels, 8, 8)
    return {"transitions": len(labels), "actions": np.bincount(labels, minlength=8).tolist(),
            "nmi_motion": round(as_is.nmi, 3), "motions": len(ids),
            "nmi_motion_to_likeliest_action": round(mapped.nmi, 3), "accuracy": round(mapped.accuracy, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=pathlib.Path, help="clip shards of an offline-world ingest")
    parser.add_argument("--corpus", type=pathlib.Path, help="the offline-world corpus they came from (truth/)")
    parser.add_argument("--work", type=pathlib.Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--videos", type=int, default=8, help="uploads in the world rendered without --shards")
    parser.add_argument("--steps", type=int, nargs="+", default=[300], help="measured after each of these steps of one run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--window-frames", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--windows", type=int, default=256, help="held-out windows measured")
    parser.add_argument("--num-codes", type=int, help="the LAM's codebook size (default: tiny.toml's)")
    parser.add_argument("--patch-size", type=int, help="the LAM's patch size (default: tiny.toml's 16)")
    parser.add_argument("--split", type=pathlib.Path, help="a split.json ({train, held_out} shard paths, as `genie run` "
                        "writes) instead of holding out a quarter of --shards' videos")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--ceiling", action="store_true", help="print what the true motion tells of the action and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or pathlib.Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        shards_dir, corpus = (args.shards, args.corpus) if args.shards else ingest_world(work, args.videos)
        if args.ceiling:
            print(json.dumps(motion_ceiling(corpus)))
            return
        from jobs.eval import held_out_shards
        from schemas.shard_io import list_shards

        if args.split:
            split = json.loads(args.split.read_text())
            training, held_out = split["train"], split["held_out"]
        else:
            training, held_out = held_out_shards(list_shards([str(shards_dir)]), 0.25)
        print(f"shards: {len(training)} training, {len(held_out)} held out; {args.steps} steps, "
              f"{args.window_frames}-frame windows x {args.batch_size}, lr {args.lr}", flush=True)
        results = []
        for name in args.variants:
            for seed in args.seeds:
                folder = work / f"lam-{name}-{seed}"
                folder.mkdir(parents=True, exist_ok=True)
                started, cpu = time.perf_counter(), cpu_seconds()
                checkpoints = train_lam(models_toml(VARIANTS[name], folder, args.num_codes, args.patch_size), training, args.steps,
                                        seed, folder, args)
                wall, cpu = round(time.perf_counter() - started, 1), round(cpu_seconds() - cpu, 1)
                for steps in sorted(args.steps):
                    row = {"variant": name, "seed": seed, "steps": steps, "lr": args.lr, "num_codes": args.num_codes,
                           "run_train_wall_s": wall, "run_train_cpu_s": cpu}
                    row |= {k: round(v, 4) if isinstance(v, float) else v
                            for k, v in measure(checkpoints / f"checkpoint_{steps:09d}", held_out, corpus, args).items()}
                    results.append(row)
                    print(json.dumps(row), flush=True)
        for name in args.variants:
            rows = [r for r in results if r["variant"] == name and r["steps"] == max(args.steps)]
            mean = lambda key: sum(r[key] for r in rows) / len(rows)
            print(f"{name:<10} NMI {mean('nmi'):.3f}  accuracy {mean('accuracy'):.3f}  "
                  f"PSNR through codes {mean('psnr_through_codes'):.2f} dB (copying the last frame: "
                  f"{mean('psnr_copying_the_last_frame'):.2f})  ({len(rows)} seeds, {max(args.steps)} steps)")


if __name__ == "__main__":
    main()
