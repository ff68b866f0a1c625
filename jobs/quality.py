"""`genie quality ...`: the learned quality filter's commands (each module has main(argv))."""

import argparse
import importlib
import sys

# name -> (module with main(argv), one-line help)
SUBCOMMANDS = {
    "label": ("jobs.quality_label", "serve the labelling page on 127.0.0.1: play each clip, score it 1-5 with one key"),
    "train": ("jobs.quality_train", "train the quality model from a labels file and the runs' shards; report P/R/AUC"),
    "labels-from-world": ("jobs.quality_world_labels", "a labels file for a run's clips from the offline world's sidecars"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genie quality",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<18} {text}" for name, (_, text) in SUBCOMMANDS.items()),
    )
    parser.add_argument("command", choices=sorted(SUBCOMMANDS), metavar="command", help="one of the commands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    options = parser.parse_args(argv)
    return importlib.import_module(SUBCOMMANDS[options.command][0]).main(options.args) or 0


if __name__ == "__main__":
    sys.exit(main())
