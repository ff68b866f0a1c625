"""`genie eval`: the paper's measures of trained models on held-out clips, as eval.json and a report.

    genie eval --tokenizer RUN --lam RUN --dynamics RUN --clips HELD_OUT_SHARDS... --out DIR \\
        [--corpus CORPUS_DIR] [--i3d I3D_WEIGHTS]

The clips must come from source videos the models never trained on: ingest writes one
shard per source video, so `held_out_shards` splits a shard list by video. Windows of T
frames are cut at frames 0, T, 2T, ... (the coding windows of `genie tokenize`), taken from
the videos in turn and, within a video, from its clips in turn. Measured on them (evals/):
- tokenizer PSNR and SSIM of the reconstruction;
- dynamics next-frame PSNR: each frame sampled from the real frames before it and the LAM's
  inferred actions;
- ΔtPSNR at t = 4 with a bootstrap interval, and PSNR against t for inferred and random actions;
- FVD of the inferred-action rollouts against the real windows, with an I3D whose weights
  the user gives (--i3d); skipped without;
- with --corpus (an offline-world corpus with truth/ sidecars), agreement of the latent
  actions with the true ones: NMI, many-to-one accuracy, confusion matrix.
DIR gets eval.json, report.md and its PNGs. A clip that cannot be read is recorded and skipped.
"""

import argparse
import dataclasses
import hashlib
import json
import pathlib
import sys

import numpy as np
import torch

from schemas.config import ConfigError, load

REPORT = "report.md"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Which models, which held-out clips, and how much to generate."""

    tokenizer_checkpoint: str  # a checkpoint directory or a run folder (its latest checkpoint)
    lam_checkpoint: str
    dynamics_checkpoint: str
    clips: tuple[str, ...]  # held-out clip shards: folders, .tar files or URIs
    output_dir: str  # eval.json, report.md and the pictures go here
    corpus_dir: str = ""  # an offline-world corpus (with truth/): latent vs true action agreement
    i3d_weights: str = ""  # I3D weights (.safetensors or a state dict) for FVD; "" skips FVD
    window_frames: int = 16  # T: frames per evaluation window (the real first frame + T-1 to predict)
    horizon: int = 0  # frames generated per rollout and predicted per window; 0 = T-1
    max_windows: int = 64  # windows evaluated, taken from the videos in turn
    batch_size: int = 8  # windows per model call
    steps: int = 25  # MaskGIT steps per generated frame (Genie: 25)
    temperature: float = 2.0  # MaskGIT's choice temperature (models/sampler.py; Genie: 2)
    t: int = 4  # the frame ΔtPSNR is measured at (Genie: 4)
    confidence: float = 0.95  # of the bootstrap intervals
    resamples: int = 2000  # bootstrap resamples
    fvd_resolution: int = 224  # frames are resized to this square for the I3D (FVD's 224)
    strips: int = 4  # windows shown as rollout strips in the report
    seed: int = 0  # random actions, MaskGIT draws and bootstrap

    def __post_init__(self):
        if not self.clips:
            raise ConfigError("no held-out clips given")
        if self.window_frames < 2:
            raise ConfigError(f"window_frames must be at least 2, got {self.window_frames}")
        if not 0 <= self.horizon <= self.window_frames - 1:
            raise ConfigError(f"horizon must be in 0..window_frames-1 = {self.window_frames - 1}, got {self.horizon}")
        if not 1 <= self.t <= self.generated_frames:
            raise ConfigError(f"t = {self.t} must be within the {self.generated_frames} generated frames")
        if self.max_windows < 2 or self.batch_size < 1 or self.steps < 1 or self.temperature < 0:
            raise ConfigError("need max_windows >= 2, batch_size >= 1, steps >= 1 and temperature >= 0")
        if self.i3d_weights and not pathlib.Path(self.i3d_weights).is_file():
            raise ConfigError(f"i3d_weights: no file {self.i3d_weights}")
        if self.corpus_dir and not (pathlib.Path(self.corpus_dir) / "truth").is_dir():
            raise ConfigError(f"corpus_dir: {self.corpus_dir} has no truth/ folder (not an offline-world corpus)")

    @property
    def generated_frames(self) -> int:
        return self.horizon or self.window_frames - 1


def held_out_shards(shards: list[str], fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training shards, held-out shards), holding out whole source videos.

    Ingest names shards <video_key>_<first>_<last>.tar, one source video each. A video is
    held out when a hash of (seed, its key) falls below `fraction`, so a video's side never
    changes as others are added; if that leaves a side empty, the video with the lowest
    (or highest) hash moves over, so both sides always hold at least one video.
    """
    if len(shards) < 2 or not 0 < fraction < 1:
        raise ConfigError(f"need at least 2 shards and 0 < fraction < 1, got {len(shards)} shards and {fraction}")

    def video_key(shard: str) -> str:
        return pathlib.PurePosixPath(shard).name.split("_")[0]

    def draw(key: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2 ** 64

    keys = sorted({video_key(s) for s in shards}, key=draw)
    if len(keys) < 2:
        raise ConfigError(f"all {len(shards)} shards hold one video ({keys[0]}): nothing to hold out by video")
    held_keys = {k for k in keys if draw(k) < fraction} or {keys[0]}
    if len(held_keys) == len(keys):
        held_keys.discard(keys[-1])
    held = [s for s in shards if video_key(s) in held_keys]
    return [s for s in shards if video_key(s) not in held_keys], held


@dataclasses.dataclass
class Windows:
    """The evaluation windows: frames and where each came from."""

    frames: np.ndarray  # (N, T, H, W, 3) uint8
    clip_ids: list[str]
    video_ids: list[str]
    true_actions: np.ndarray | None  # (N, T-1) int64, -1 unknown; None without a corpus
    clips: int
    skipped: list[dict]


def read_windows(config: EvalConfig) -> Windows:
    """Choose windows from the videos in turn (metadata only), then decode just those clips."""
    from schemas import shard as clip_spec
    from schemas.validation import SchemaError
    from schemas.shard_io import ShardError, iter_samples, list_shards

    T = config.window_frames
    by_video: dict[str, list[list[tuple[str, str, int]]]] = {}  # video -> its clips' (shard, clip key, start)
    skipped, clips = [], 0
    shards = list_shards(list(config.clips))
    for shard in shards:
        try:
            for sample in iter_samples(shard):
                try:
                    meta = clip_spec.decode_meta(sample[clip_spec.META_FIELD])
                except (SchemaError, KeyError) as error:
                    skipped.append({"clip": sample.get("__key__"), "shard": shard, "reason": f"metadata: {error}"})
                    continue
                clips += 1
                by_video.setdefault(meta["video_id"], []).append(
                    [(shard, sample["__key__"], start) for start in range(0, meta["n_frames"] - T + 1, T)])
        except ShardError as error:
            skipped.append({"clip": None, "shard": shard, "reason": f"shard: {error}"})
    # clips in turn within a video, videos in turn: the bootstrap resamples clips, so the
    # windows spread over as many clips as the budget allows
    per_video = [_round_robin(clips, sum(map(len, clips))) for clips in by_video.values()]
    chosen = _round_robin(per_video, config.max_windows)
    wanted: dict[tuple[str, str], list[int]] = {}
    for shard, key, start in chosen:
        wanted.setdefault((shard, key), []).append(start)

    truth = None
    if config.corpus_dir:
        from evals.world_truth import WorldTruth

        truth = WorldTruth(config.corpus_dir)
    frames, clip_ids, video_ids, true_actions = [], [], [], []
    for shard in dict.fromkeys(s for s, _ in wanted):
        for sample in iter_samples(shard):
            starts = wanted.get((shard, sample["__key__"]))
            if not starts:
                continue
            try:
                clip, meta = clip_spec.decode_sample(sample)
                labels = truth.clip_actions(meta) if truth is not None else None
            except (SchemaError, ValueError) as error:
                skipped.append({"clip": sample["__key__"], "shard": shard, "reason": f"decode: {error}"})
                continue
            for start in starts:
                frames.append(clip[start:start + T])
                clip_ids.append(meta["clip_id"])
                video_ids.append(meta["video_id"])
                true_actions.append(np.full(T - 1, -1, np.int64) if labels is None else labels[start:start + T - 1])
    if len(frames) < 2:
        raise ConfigError(f"fewer than 2 windows of {T} frames in {list(config.clips)} (clips read: {clips}, "
                         f"skipped: {len(skipped)})")
    return Windows(np.stack(frames), clip_ids, video_ids, np.stack(true_actions) if truth is not None else None,
                   clips, skipped)


def _round_robin(groups: list[list], limit: int) -> list:
    """Up to `limit` items taken from each group in turn (its first, then its second, ...)."""
    taken = []
    for index in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if index < len(group) and len(taken) < limit:
                taken.append(group[index])
    return taken


def _load_models(config: EvalConfig, device: torch.device):
    from train.checkpoint import latest_checkpoint, load_meta
    from train.components import load_trained

    models, info = [], {}
    for name, path in (("tokenizer", config.tokenizer_checkpoint), ("lam", config.lam_checkpoint),
                       ("dynamics", config.dynamics_checkpoint)):
        checkpoint = latest_checkpoint(path)
        meta = load_meta(checkpoint)
        models.append(load_trained(checkpoint, name).to(device))
        info[name] = {"checkpoint": str(checkpoint), "step": meta.get("step"),
                      "trained_window_frames": meta.get("data_position", {}).get("window_frames")}
    return (*models, info)


def _check_fit(config: EvalConfig, tokenizer, lam, dynamics) -> None:
    from schemas.shard import FRAME_HEIGHT, FRAME_WIDTH

    T = config.window_frames
    for name, model in (("tokenizer", tokenizer), ("lam", lam), ("dynamics", dynamics)):
        if T > model.config.max_frames:
            raise ConfigError(f"window_frames {T} exceeds the {name}'s max_frames {model.config.max_frames}")
    if (tokenizer.config.frame_height, tokenizer.config.frame_width) != (FRAME_HEIGHT, FRAME_WIDTH):
        raise ConfigError("the tokenizer was not built for the shards' 160x90 frames")
    if lam.config.quantizer.num_codes != dynamics.config.num_actions:
        raise ConfigError(f"the LAM has {lam.config.quantizer.num_codes} actions, the dynamics model "
                         f"{dynamics.config.num_actions}")


def _mean_interval(table: np.ndarray, groups: list[str], config: EvalConfig) -> tuple[np.ndarray, ...]:
    """Per-column mean and bootstrap interval of a (windows, n) table -> (mean, low, high), each (n,)."""
    from evals.controllability import bootstrap_interval

    bounds = [bootstrap_interval(column, np.array(groups), config.confidence, config.resamples, config.seed)
              for column in table.T]
    return table.mean(0), np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])


@torch.no_grad()
def evaluate(config: EvalConfig) -> dict:
    """Run every measure; write eval.json, report.md and the pictures; return the summary."""
    from evals import rollouts
    from evals.controllability import bootstrap_interval, delta_psnr
    from evals.images import psnr, ssim
    from train.components import video_from_frames

    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    output = pathlib.Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer, lam, dynamics, checkpoints = _load_models(config, device)
    _check_fit(config, tokenizer, lam, dynamics)
    windows = read_windows(config)
    n, T = config.generated_frames, config.window_frames
    action_generator = torch.Generator().manual_seed(config.seed)

    tables = {name: [] for name in ("recon_psnr", "recon_ssim", "next_psnr", "inferred_psnr", "random_psnr")}
    inferred_actions, strips, fvd_real, fvd_generated = [], [], [], []
    for first in range(0, len(windows.frames), config.batch_size):
        seed = config.seed + first  # the batch's MaskGIT draws, shared by its inferred and random rollouts
        video = video_from_frames(torch.from_numpy(windows.frames[first:first + config.batch_size]), device)
        recon = rollouts.reconstruct(tokenizer, video)
        tables["recon_psnr"].append(psnr(recon, video).cpu())
        tables["recon_ssim"].append(ssim(recon, video).cpu())
        actions = rollouts.infer_actions(lam, video)  # (B, T-1)
        inferred_actions.append(actions.cpu())
        target = video[:, 1:n + 1]
        predicted = rollouts.next_frames(tokenizer, dynamics, video[:, :n + 1], actions[:, :n], config.steps,
                                         config.temperature, seed)
        tables["next_psnr"].append(psnr(predicted, target).cpu())
        random = rollouts.random_actions((len(video), n), dynamics.config.num_actions, action_generator)
        played = {}
        for name, chosen in (("inferred", actions[:, :n]), ("random", random)):
            played[name] = rollouts.rollout(tokenizer, dynamics, video[:, 0], chosen, config.steps,
                                            config.temperature, seed)
            tables[f"{name}_psnr"].append(psnr(played[name], target).cpu())
        if config.i3d_weights:
            fvd_real.append(video[:, :n + 1].cpu())
            fvd_generated.append(torch.cat([video[:, :1], played["inferred"]], dim=1).cpu())
        if len(strips) < config.strips:
            for b in range(min(len(video), config.strips - len(strips))):
                rows = [video[b, :n + 1], recon[b, :n + 1], torch.cat([video[b, :1], played["inferred"][b]]),
                        torch.cat([video[b, :1], played["random"][b]])]
                frames = torch.stack(rows).mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
                strips.append((frames.cpu().numpy(), "".join(map(str, actions[b, :n].tolist())),
                               "".join(map(str, random[b].tolist()))))  # (4, n+1, H, W, 3) and the actions
    tables = {name: torch.cat(parts).numpy().astype(np.float64) for name, parts in tables.items()}
    clip_groups = windows.clip_ids

    delta = delta_psnr(tables["inferred_psnr"], tables["random_psnr"], config.t, np.array(clip_groups),
                       config.confidence, config.resamples, config.seed)
    curves = {name: _mean_interval(tables[f"{name}_psnr"], clip_groups, config) for name in ("inferred", "random")}
    recon_psnr = tables["recon_psnr"].mean(1)
    summary = {
        "checkpoints": checkpoints,
        "data": {"shards": list(config.clips), "videos": sorted(set(windows.video_ids)), "clips": windows.clips,
                 "windows": len(windows.frames), "window_frames": T, "generated_frames": n,
                 "skipped": windows.skipped},
        "settings": {"steps": config.steps, "temperature": config.temperature, "seed": config.seed,
                     "confidence": config.confidence, "resamples": config.resamples, "device": device.type},
        "tokenizer": {"psnr": float(recon_psnr.mean()), "ssim": float(tables["recon_ssim"].mean()),
                      "psnr_interval": list(bootstrap_interval(recon_psnr, np.array(clip_groups), config.confidence,
                                                               config.resamples, config.seed))},
        "dynamics": {"next_frame_psnr": float(tables["next_psnr"].mean()),
                     "next_frame_psnr_by_t": tables["next_psnr"].mean(0).tolist()},
        "controllability": {"delta_psnr": delta.to_dict(),
                            "psnr_by_t": {name: {"mean": c[0].tolist(), "low": c[1].tolist(), "high": c[2].tolist()}
                                          for name, c in curves.items()}},
        "fvd": None, "actions": None, "notes": _notes(config, checkpoints),
    }
    if config.i3d_weights:
        summary["fvd"] = _fvd(config, torch.cat(fvd_real), torch.cat(fvd_generated), device)
    pictures = {"psnr_by_t": "psnr_by_t.png"}
    if windows.true_actions is not None:
        summary["actions"] = _agreement(torch.cat(inferred_actions).numpy(), windows.true_actions,
                                        lam.config.quantizer.num_codes, output, pictures)
    _write_pictures(config, output, curves, strips, pictures)
    summary["report"] = REPORT
    from evals.report import markdown_report

    (output / REPORT).write_text(markdown_report(summary, pictures))
    (output / "eval.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    return summary


def _notes(config: EvalConfig, checkpoints: dict) -> list[str]:
    notes = []
    trained = checkpoints["dynamics"]["trained_window_frames"]
    if trained is not None and config.t >= trained:
        notes.append(f"the dynamics model trained on {trained}-frame windows, so generated frame t = {config.t} "
                     f"sits at a temporal position it never trained on: ΔtPSNR measures extrapolation")
    if config.i3d_weights and config.fvd_resolution != 224:
        notes.append(f"FVD at {config.fvd_resolution}x{config.fvd_resolution}, not the standard 224: not comparable")
    return notes


def _fvd(config: EvalConfig, real: torch.Tensor, generated: torch.Tensor, device: torch.device) -> dict:
    from evals.fvd import fvd
    from evals.i3d import load_i3d

    i3d = load_i3d(config.i3d_weights, device)
    value = fvd(i3d, real, generated, config.fvd_resolution)
    return {"value": value, "weights": config.i3d_weights, "videos": len(real), "frames": real.shape[1],
            "resolution": config.fvd_resolution, "generated": "rollouts with the inferred actions"}


def _agreement(latent: np.ndarray, true: np.ndarray, num_latent: int, output: pathlib.Path, pictures: dict) -> dict:
    from evals.actions import action_agreement
    from evals.report import plot_confusion
    from world.actions import N_ACTIONS, Action

    agreement = action_agreement(latent.ravel(), true.ravel(), num_latent, N_ACTIONS)
    if agreement.count:
        plot_confusion(agreement.confusion, [a.name.lower() for a in Action], output / "confusion.png")
        pictures["confusion"] = "confusion.png"
    return agreement.to_dict() | {"true_action_names": [a.name.lower() for a in Action]}


def _write_pictures(config: EvalConfig, output: pathlib.Path, curves: dict, strips: list, pictures: dict) -> None:
    from evals.report import frame_grid, plot_psnr_by_t, stack_images, write_png

    plot_psnr_by_t({f"{name} actions": curve for name, curve in curves.items()}, config.t, output / "psnr_by_t.png")
    if strips:
        blocks = [frame_grid(frames, scale=2, labels=["real", "recon", f"inferred {actions}", f"random {random}"])
                  for frames, actions, random in strips]
        write_png(stack_images(blocks), output / "strips.png")
        pictures["strips"] = "strips.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genie eval", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--config", type=pathlib.Path, help="an EvalConfig TOML; flags given override its keys")
    parser.add_argument("--tokenizer", help="tokenizer checkpoint or run folder")
    parser.add_argument("--lam", help="latent action model checkpoint or run folder")
    parser.add_argument("--dynamics", help="dynamics checkpoint or run folder")
    parser.add_argument("--clips", nargs="+", help="held-out clip shards (folders, .tar files, URIs)")
    parser.add_argument("--out", help="output folder")
    parser.add_argument("--corpus", help="offline-world corpus folder (with truth/) for action agreement")
    parser.add_argument("--i3d", help="I3D weights (.safetensors or state dict) for FVD")
    for field in ("window_frames", "horizon", "max_windows", "batch_size", "steps", "t", "seed"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, dest=field)
    parser.add_argument("--temperature", type=float)
    options = parser.parse_args(argv)
    given = {"tokenizer_checkpoint": options.tokenizer, "lam_checkpoint": options.lam,
             "dynamics_checkpoint": options.dynamics, "clips": tuple(options.clips) if options.clips else None,
             "output_dir": options.out, "corpus_dir": options.corpus, "i3d_weights": options.i3d,
             **{f: getattr(options, f) for f in ("window_frames", "horizon", "max_windows", "batch_size", "steps",
                                                 "t", "seed", "temperature")}}
    given = {key: value for key, value in given.items() if value is not None}
    try:
        if options.config:
            config = dataclasses.replace(load(EvalConfig, options.config), **given)
        else:
            missing = [f"--{flag}" for flag, key in (("tokenizer", "tokenizer_checkpoint"), ("lam", "lam_checkpoint"),
                       ("dynamics", "dynamics_checkpoint"), ("clips", "clips"), ("out", "output_dir")) if key not in given]
            if missing:
                parser.error(f"the following arguments are required without --config: {', '.join(missing)}")
            config = EvalConfig(**given)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    summary = evaluate(config)
    print(json.dumps({"eval": str(pathlib.Path(config.output_dir) / "eval.json"),
                      "report": str(pathlib.Path(config.output_dir) / REPORT)} | dict(headline_numbers(summary)),
                     indent=1))
    return 0


def headline_numbers(summary: dict) -> list[tuple[str, float | None]]:
    """The numbers a training operator looks at first, for printing."""
    delta = summary["controllability"]["delta_psnr"]
    return [("tokenizer_psnr", round(summary["tokenizer"]["psnr"], 3)),
            ("next_frame_psnr", round(summary["dynamics"]["next_frame_psnr"], 3)),
            ("delta_psnr", round(delta["value"], 4)), ("delta_psnr_interval", [round(delta["low"], 4), round(delta["high"], 4)]),
            ("fvd", summary["fvd"] and round(summary["fvd"]["value"], 3)),
            ("action_nmi", summary["actions"] and round(summary["actions"]["nmi"], 4))]


if __name__ == "__main__":
    sys.exit(main())
