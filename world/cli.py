"""`genie world ...`: play the platformer, render an upload, generate a corpus, serve it, or
draw a contact sheet."""

import argparse
import dataclasses
import json
import pathlib
import sys

from schemas.config import ConfigError, from_dict, load


def _play(options: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from world.agents import make_agent
    from world.env import PlatformerEnv

    env = PlatformerEnv(seed=options.seed, theme=options.theme)
    agent = make_agent(options.agent, options.seed)
    observation, info = env.reset()
    total, frames_dir = 0.0, options.frames
    if frames_dir:
        pathlib.Path(frames_dir).mkdir(parents=True, exist_ok=True)
    for step in range(options.steps):
        if frames_dir and step % options.every == 0:
            Image.fromarray(np.repeat(np.repeat(observation, 4, 0), 4, 1)).save(pathlib.Path(frames_dir) / f"{step:06d}.png")
        observation, reward, terminated, truncated, info = env.step(agent.act(env.game))
        total += reward
        if terminated or truncated:
            break
    print(json.dumps({"steps": info["frame"], "return": round(total, 4), **info}))
    return 0


def _render(options: argparse.Namespace) -> int:
    from world.corpus import video_id
    from world.timeline import plan_gameplay_video, plan_offtopic_video
    from world.video import render_video

    out = pathlib.Path(options.out)
    identifier = video_id(options.seed, 0)
    if options.offtopic:
        plan = plan_offtopic_video(identifier, options.seed, options.fps, options.duration, options.offtopic)
    else:
        plan = plan_gameplay_video(identifier, options.seed, options.fps, options.duration)
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = render_video(plan, out, options.width, options.height)
    truth_path = pathlib.Path(options.truth) if options.truth else out.with_suffix(".truth.json")
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {out} ({truth['n_frames']} frames, {len(truth['cuts'])} cuts) and {truth_path}")
    return 0


def _corpus(options: argparse.Namespace) -> int:
    from world.corpus import CorpusConfig, generate_corpus

    config = load(CorpusConfig, options.config) if options.config else CorpusConfig()
    overrides = {name: getattr(options, name) for name in ("seed", "videos", "offtopic") if getattr(options, name) is not None}
    config = from_dict(CorpusConfig, {**dataclasses.asdict(config), **overrides})

    def report(number: int, total: int, entry: dict) -> None:
        print(f"[{number}/{total}] {entry['id']} {entry['duration_s']:.1f}s {entry['title']}", flush=True)

    catalog = generate_corpus(config, options.out, progress=report)
    print(f"wrote {len(catalog['videos'])} videos to {options.out}")
    return 0


def _contact_sheet(options: argparse.Namespace) -> int:
    from world.contact_sheet import make_contact_sheet

    print(f"wrote {make_contact_sheet(options.out, seed=options.seed)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from world.actions import N_ACTIONS
    from world.agents import AGENTS
    from world.offtopic import TOPICS
    from world.themes import THEME_NAMES

    parser = argparse.ArgumentParser(prog="genie world", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    play = commands.add_parser("play", help=f"run an agent in the environment ({N_ACTIONS} actions); print the outcome")
    play.add_argument("--seed", type=int, default=0, help="level seed")
    play.add_argument("--theme", choices=THEME_NAMES, help="visual theme (default: drawn from the seed)")
    play.add_argument("--agent", choices=sorted(AGENTS), default="scripted")
    play.add_argument("--steps", type=int, default=900, help="most steps to play")
    play.add_argument("--frames", help="folder to save PNG frames into")
    play.add_argument("--every", type=int, default=30, help="save every N-th frame")
    play.set_defaults(run=_play)

    render = commands.add_parser("render", help="render one upload (MP4) and its ground-truth sidecar")
    render.add_argument("--out", required=True, help="MP4 path to write")
    render.add_argument("--truth", help="sidecar path (default: beside the MP4, .truth.json)")
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--duration", type=float, default=30.0, help="target length in seconds")
    render.add_argument("--offtopic", choices=TOPICS, help="render off-topic footage about this subject instead")
    render.add_argument("--fps", type=int, choices=(30, 60), default=30)
    render.add_argument("--width", type=int, default=640)
    render.add_argument("--height", type=int, default=360)
    render.set_defaults(run=_render)

    corpus = commands.add_parser("corpus", help="generate a corpus directory (catalog.json, videos/, truth/)")
    corpus.add_argument("--out", required=True, help="corpus directory")
    corpus.add_argument("--config", help="TOML file with CorpusConfig keys")
    corpus.add_argument("--seed", type=int, help="overrides the config's seed")
    corpus.add_argument("--videos", type=int, help="overrides the config's number of videos")
    corpus.add_argument("--offtopic", type=int, help="overrides how many videos are off-topic")
    corpus.set_defaults(run=_corpus)

    commands.add_parser("serve", help="serve a corpus over HTTP (see genie world serve --help)", add_help=False)

    sheet = commands.add_parser("contact-sheet", help="write a PNG of frames from every theme and junk kind")
    sheet.add_argument("--out", default="contact_sheet.png", help="PNG path to write")
    sheet.add_argument("--seed", type=int, default=0)
    sheet.set_defaults(run=_contact_sheet)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from world import site

        return site.main(argv[1:]) or 0
    options = _parser().parse_args(argv)
    try:
        return options.run(options)
    except (ConfigError, ValueError) as error:
        print(f"genie world {options.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
