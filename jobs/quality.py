"""`genie quality SUBCOMMAND`: the learned quality filter's commands. Each subcommand lives in its
own module with a `main(argv)`, imported only when it runs (as jobs/cli.py does for commands)."""

import argparse
import importlib
import sys

# name -> (module with main(argv), one-line help)
SUBCOMMANDS = {
    "label": ("jobs.quality_label", "a local page to score an ingest run's kept clips 1-5 with one key press each"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genie quality",
        description="Label clips, train the quality classifier, and make labels from the offline world.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands:\n" + "\n".join(f"  {name:<18} {text}" for name, (_, text) in SUBCOMMANDS.items()),
    )
    parser.add_argument("subcommand", choices=sorted(SUBCOMMANDS), metavar="subcommand", help="one of the subcommands below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the subcommand's own arguments (genie quality SUB --help)")
    options = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[options.subcommand][0])
    return module.main(options.args) or 0


if __name__ == "__main__":
    sys.exit(main())
