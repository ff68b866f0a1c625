"""Where the tiny LAM's action signal is lost: the decoder fed the TRUE action, and the encoder
trained to predict it, on offline-world windows held in memory (not the real loop: no loader,
no Ray; AdamW and schedule of train/optimizer.py, gradient clip 1).

    python benchmarks/lam_oracle.py --corpus W/corpus --split W/split.json --mode oracle [--set action_shift='"band"']

Modes (held-out PSNR of the decoder's prediction, or NMI / accuracy with the true actions):
- oracle: the LAM's decoder trained with a learned embedding of the true action in place of the code;
- noaction: the same decoder with a constant action (what the frames alone buy);
- probe: the LAM's encoder plus a linear head trained with cross-entropy on the true action
  (supervised: can this encoder read the action within the budget at all?);
- lam: the LAM itself (as benchmarks/lam_actions.py, on these windows).
--set KEY=JSON overrides [lam] keys of models/configs/tiny.toml (encoder.KEY, decoder.KEY,
quantizer.KEY for those tables). Training windows: every 5-frame window of --split's
training shards (jobs/eval.py read_windows); held out: 256 windows of its held-out ones.
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def lam_config(overrides: list[str]):
    from models.config import load_model_configs

    config, tables = load_model_configs("tiny").lam, {"": {}}
    for item in overrides:
        key, value = item.split("=", 1)
        table, _, name = key.rpartition(".")
        tables.setdefault(table, {})[name] = json.loads(value)
    top = tables.pop("")
    top |= {table: dataclasses.replace(getattr(config, table), **keys) for table, keys in tables.items()}
    return dataclasses.replace(config, **top)


def main() -> None:
    from benchmarks.lam_probes import windows
    from evals.actions import action_agreement
    from models.lam import LatentActionModel
    from models.patches import to_patches
    from train.optimizer import OptimConfig, build_optimizer, build_schedule

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=pathlib.Path, required=True)
    parser.add_argument("--split", type=pathlib.Path, required=True)
    parser.add_argument("--mode", choices=["oracle", "noaction", "probe", "lam"], default="oracle")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4, help="5-frame windows a step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="KEY=JSON overrides of tiny.toml's [lam]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    split = json.loads(args.split.read_text())
    train, held = windows(split["train"], args.corpus, 10 ** 6), windows(split["held_out"], args.corpus, 256)
    config = lam_config(args.set)
    model = LatentActionModel(config)
    true_action = torch.nn.Embedding(9, config.quantizer.code_dim)  # 8: unknown
    head = torch.nn.Linear(config.quantizer.code_dim, 8)
    modules = torch.nn.ModuleList([model, true_action, head])
    optim = OptimConfig(max_steps=args.steps, lr=args.lr, warmup_steps=min(20, args.steps // 10))
    optimizer = build_optimizer(modules, optim)
    schedule = build_schedule(optimizer, optim)

    def video(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).float().div(255).permute(0, 1, 4, 2, 3).contiguous()

    def predict(clip: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if args.mode == "oracle":
            actions = true_action(torch.where(labels < 0, 8, labels))
        else:
            actions = torch.zeros(*labels.shape, config.quantizer.code_dim)
        return model._predict(clip, to_patches(clip * 2 - 1, config.patch_size), actions)

    started = time.process_time()
    for _ in range(args.steps):
        chosen = rng.integers(0, len(train.frames), args.batch_size)
        clip, labels = video(train.frames[chosen]), torch.from_numpy(train.true_actions[chosen]).long()
        if args.mode == "lam":
            loss = model(clip).loss
        elif args.mode == "probe":
            logits, known = head(model.encode_actions(clip)), labels >= 0
            loss = F.cross_entropy(logits[known], labels[known])
        else:
            loss = F.mse_loss(predict(clip, labels), clip[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    row = {"mode": args.mode, "set": args.set, "steps": args.steps, "seed": args.seed,
           "train_cpu_s": round(time.process_time() - started, 1)}
    model.eval()
    codes, errors = [], []
    with torch.no_grad():
        for first in range(0, len(held.frames), 16):
            clip = video(held.frames[first:first + 16])
            labels = torch.from_numpy(held.true_actions[first:first + 16]).long()
            if args.mode == "lam":
                codes.append(model.infer_actions(clip))
                errors.append((model(clip).recon.clamp(0, 1) - clip[:, 1:]).pow(2).mean((2, 3, 4)))
            elif args.mode == "probe":
                codes.append(head(model.encode_actions(clip)).argmax(-1))
            else:
                errors.append((predict(clip, labels).clamp(0, 1) - clip[:, 1:]).pow(2).mean((2, 3, 4)))
    if errors:
        row["psnr"] = round(float(-10 * torch.log10(torch.cat(errors).mean())), 3)
    if codes:
        agreement = action_agreement(torch.cat(codes).numpy().ravel(), held.true_actions.ravel(),
                                     max(8, config.quantizer.num_codes), 8)
        row |= {"nmi": round(agreement.nmi, 4), "accuracy": round(agreement.accuracy, 4),
                "codes_used": int((agreement.confusion.sum(1) > 0).sum())}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
