"""The `genie` command. Each subcommand lives in its own module with a `main(argv)`;
modules are imported only when their subcommand runs, so `genie --help` stays instant.

An error the user can fix (schemas/errors.py GenieError: a bad config, a missing checkpoint,
folder or shard) is printed as `genie: error: ...` with exit status 1, without a traceback.
"""

import argparse
import importlib
import sys

from schemas.errors import GenieError

# name -> (module with main(argv), one-line help)
COMMANDS = {
    "run": ("jobs.run", "the main job end to end on its embedded default (offline world, local Ray)"),
    "world": ("world.cli", "the offline platformer: play, render videos, make a corpus, serve it, contact sheet"),
    "ingest": ("jobs.ingest", "keyword search -> download -> 16 s clips -> WebDataset shards + lineage, on Ray"),
    "train": ("jobs.train", "train the tokenizer, LAM or dynamics model from shards on Ray Train (resumable)"),
    "tokenize": ("jobs.tokenize", "clip shards -> token shards (tokens + latent actions) for dynamics training, on Ray"),
    "release": ("jobs.release", "ingest runs -> a versioned release (shuffled shards, splits, manifest, card); takedowns"),
    "verify": ("jobs.verify", "check a release: checksums, every sample against the manifest, schemas, split rule"),
    "play": ("jobs.play", "one image in, a generated frame per chosen latent action out (trained tokenizer + dynamics)"),
    "rollout": ("jobs.rollout", "an action sequence as an MP4/GIF, and a grid of what each latent action does over time"),
    "quality": ("jobs.quality", "the learned quality filter: label clips, labels from the offline world, train the model"),
    "eval": ("jobs.eval", "the paper's measures on held-out clips (PSNR, SSIM, next-frame PSNR, ΔtPSNR, FVD, action NMI) + report"),
}


def dispatch(prog: str, commands: dict[str, tuple[str, str]], argv: list[str] | None, description: str | None = None):
    """Parse `prog COMMAND ARGS...` and import the command's module; returns (module, its argv)."""
    width = max(len(name) for name in commands) + 2
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<{width}} {text}" for name, (_, text) in commands.items()),
    )
    parser.add_argument("command", choices=sorted(commands), metavar="command", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=f"the command's own arguments ({prog} COMMAND --help)")
    options = parser.parse_args(argv)
    return importlib.import_module(commands[options.command][0]), options.args


def main(argv: list[str] | None = None) -> int:
    module, args = dispatch("genie", COMMANDS, argv, "Curate gameplay video into training shards and train Genie on them.")
    try:
        return module.main(args) or 0
    except GenieError as error:
        first, *rest = str(error).splitlines() or [type(error).__name__]
        print("\n".join([f"genie: error: {first}", *(f"  {line}" for line in rest)]), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
