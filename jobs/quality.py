"""`genie quality ...`: the learned quality filter's commands (each module has main(argv))."""

import sys

from jobs.cli import dispatch

# name -> (module with main(argv), one-line help)
SUBCOMMANDS = {
    "label": ("jobs.quality_label", "serve the labelling page on 127.0.0.1: play each clip, score it 1-5 with one key"),
    "train": ("jobs.quality_train", "train the quality model from a labels file and the runs' shards; report P/R/AUC"),
    "labels-from-world": ("jobs.quality_world_labels", "a labels file for a run's clips from the offline world's sidecars"),
}


def main(argv: list[str] | None = None) -> int:
    module, args = dispatch("genie quality", SUBCOMMANDS, argv)
    return module.main(args) or 0


if __name__ == "__main__":
    sys.exit(main())
