"""What an upload contains, decided before a pixel is drawn: a list of shots (gameplay of one
level, a title screen, a menu, a slide, black frames, off-topic footage) and the transition
into each (hard cut or fade). Gameplay is simulated here, so the plan holds every action and
the ground-truth sidecar follows from the plan alone.

Quality labels (1 = drop, 5 = keep) follow the Genie paper's scale: clean gameplay played
well 5, clean gameplay of a random agent 4, letterboxed 3, under a face-cam 2, and every
non-gameplay shot 1.
"""

import dataclasses

import numpy as np

from world.agents import make_agent
from world.game import Game
from world.level import generate_level
from world.offtopic import TOPICS
from world.themes import THEME_NAMES

SHOT_KINDS = ("gameplay", "title", "menu", "slide", "black", "offtopic")
JUNK_KINDS = ("facecam", "letterbox")
QUALITY = {"clean_scripted": 5, "clean_random": 4, "letterbox": 3, "facecam": 2, "other": 1}
GAME_NAMES = ("Pixel Quest", "Super Jump Bros", "Mega Hopper", "Tiny Knight", "Robo Run",
              "Coin Dash", "Castle Climber", "Block World")


@dataclasses.dataclass(frozen=True)
class Shot:
    """One shot of a video. `actions` (gameplay only) has one action id per frame."""

    kind: str
    n_frames: int
    quality: int
    junk: str | None = None
    theme: str | None = None
    level_seed: int | None = None
    actions: tuple[int, ...] = ()
    text: tuple[str, ...] = ()  # the game's name, a slide's lines, or an off-topic subject
    style_seed: int = 0  # picks look variants (face-cam corner, letterbox shape, colours)

    def __post_init__(self):
        if self.kind not in SHOT_KINDS:
            raise ValueError(f"unknown shot kind {self.kind!r}")
        if self.junk not in (None, *JUNK_KINDS):
            raise ValueError(f"unknown junk {self.junk!r}")
        if self.kind == "gameplay" and len(self.actions) != self.n_frames:
            raise ValueError(f"a gameplay shot needs one action per frame: {len(self.actions)} != {self.n_frames}")


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    """A whole upload: shots in order and the transition ("hard" or "fade") into each shot
    after the first."""

    video_id: str
    on_topic: bool
    fps: int
    shots: tuple[Shot, ...]
    transitions: tuple[str, ...]

    def __post_init__(self):
        if len(self.transitions) != max(0, len(self.shots) - 1):
            raise ValueError("a plan needs one transition between each pair of shots")
        if any(kind not in ("hard", "fade") for kind in self.transitions):
            raise ValueError(f"transitions must be 'hard' or 'fade', got {self.transitions}")

    @property
    def n_frames(self) -> int:
        return sum(shot.n_frames for shot in self.shots)

    @property
    def fade_frames(self) -> int:
        """Frames on each side of a fade's middle over which the picture dips to black."""
        return max(2, self.fps // 3)

    def cut_frames(self) -> list[int]:
        """The first frame of every shot after the first."""
        starts = np.cumsum([shot.n_frames for shot in self.shots])
        return [int(start) for start in starts[:-1]]

    def truth(self) -> dict:
        """The ground-truth sidecar (the corpus contract's truth/<id>.json)."""
        segments, actions, start = [], [], 0
        for shot in self.shots:
            segments.append({
                "start_frame": start, "end_frame": start + shot.n_frames, "kind": shot.kind,
                "junk": shot.junk, "quality": shot.quality, "theme": shot.theme, "level_seed": shot.level_seed,
            })
            actions.extend(shot.actions if shot.kind == "gameplay" else [-1] * shot.n_frames)
            start += shot.n_frames
        cuts = [{"frame": frame, "time_s": round(frame / self.fps, 6), "kind": kind}
                for frame, kind in zip(self.cut_frames(), self.transitions)]
        return {"id": self.video_id, "on_topic": self.on_topic, "fps": self.fps, "n_frames": self.n_frames,
                "cuts": cuts, "segments": segments, "actions": actions}


def play(level_seed: int, agent: str, agent_seed: int, max_frames: int, fps: int) -> tuple[int, ...]:
    """The actions an agent presses on a level, until it finishes, dies or max_frames pass."""
    game = Game(generate_level(level_seed), fps)
    player = make_agent(agent, agent_seed)
    actions = []
    while not game.over and len(actions) < max_frames:
        action = player.act(game)
        actions.append(int(action))
        game.step(action)
    return tuple(actions)


def _seconds(rng: np.random.Generator, fps: int, low: float, high: float) -> int:
    return int(rng.uniform(low, high) * fps)


def _transitions(rng: np.random.Generator, shots: list[Shot], fade_chance: float) -> tuple[str, ...]:
    """Hard cuts next to black frames (a fade there would be invisible), else fades by chance."""
    kinds = []
    for before, after in zip(shots, shots[1:]):
        near_black = "black" in (before.kind, after.kind)
        kinds.append("fade" if not near_black and rng.random() < fade_chance else "hard")
    return tuple(kinds)


def plan_gameplay_video(video_id: str, seed: int, fps: int, duration_s: float,
                        themes: tuple[str, ...] = THEME_NAMES) -> VideoPlan:
    """An on-topic upload of about `duration_s`: maybe a title and a menu, then levels in
    different `themes` (two at least) with the odd slide or black gap between them, maybe an
    outro slide.
    A whole upload is clean, letterboxed or under a face-cam."""
    rng = np.random.default_rng([seed, 0x91A7])
    style = str(rng.choice(["clean", "facecam", "letterbox"], p=[0.5, 0.25, 0.25]))
    game_name = str(rng.choice(GAME_NAMES))
    style_seed = int(rng.integers(2**31))
    target = int(duration_s * fps)
    first_theme = str(rng.choice(themes))
    shots: list[Shot] = []
    if rng.random() < 0.5:
        shots.append(Shot("title", _seconds(rng, fps, 2, 3.5), QUALITY["other"], theme=first_theme,
                          text=(game_name,), style_seed=int(rng.integers(2**31))))
    if rng.random() < 0.35:
        shots.append(Shot("menu", _seconds(rng, fps, 2, 3.5), QUALITY["other"], theme=first_theme,
                          text=(game_name,), style_seed=int(rng.integers(2**31))))
    theme, world, stage, levels = first_theme, 1, 1, 0
    while levels == 0 or sum(shot.n_frames for shot in shots) < target - 2 * fps:
        if levels:
            theme = str(rng.choice([name for name in themes if name != theme]))
        agent = "scripted" if rng.random() < 0.8 else "random"
        room = target - sum(shot.n_frames for shot in shots)
        max_frames = max(2 * fps, min(room, _seconds(rng, fps, 6, 12)))
        level_seed = int(rng.integers(2**31))
        actions = play(level_seed, agent, int(rng.integers(2**31)), max_frames, fps)
        if len(actions) < fps:  # died within a second: an editor would have cut it
            continue
        if levels and rng.random() < 0.2:
            shots.append(Shot("slide", _seconds(rng, fps, 1.5, 2.5), QUALITY["other"],
                              text=(f"WORLD {world}-{stage}", game_name), style_seed=int(rng.integers(2**31))))
        elif levels and rng.random() < 0.15:
            shots.append(Shot("black", _seconds(rng, fps, 0.5, 1.2), QUALITY["other"]))
        quality = QUALITY[style] if style != "clean" else QUALITY[f"clean_{agent}"]
        shots.append(Shot("gameplay", len(actions), quality, junk=None if style == "clean" else style,
                          theme=theme, level_seed=level_seed, actions=actions, style_seed=style_seed))
        levels += 1
        world, stage = (world, stage + 1) if stage < 4 else (world + 1, 1)
    if rng.random() < 0.4:
        shots.append(Shot("slide", _seconds(rng, fps, 2, 3), QUALITY["other"],
                          text=("THANKS FOR WATCHING", "like and subscribe"), style_seed=int(rng.integers(2**31))))
    return VideoPlan(video_id, True, fps, tuple(shots), _transitions(rng, shots, fade_chance=0.35))


def plan_offtopic_video(video_id: str, seed: int, fps: int, duration_s: float, topic: str) -> VideoPlan:
    """An off-topic upload about `topic`: a few shots of it, with cutaways to related subjects."""
    rng = np.random.default_rng([seed, 0x0FF7])
    target = int(duration_s * fps)
    shots: list[Shot] = []
    subject = topic
    while not shots or sum(shot.n_frames for shot in shots) < target - fps:
        room = target - sum(shot.n_frames for shot in shots)
        shots.append(Shot("offtopic", max(fps, min(room, _seconds(rng, fps, 4, 10))), QUALITY["other"],
                          text=(subject,), style_seed=int(rng.integers(2**31))))
        subject = topic if subject != topic else str(rng.choice([name for name in TOPICS if name != topic]))
    return VideoPlan(video_id, False, fps, tuple(shots), _transitions(rng, shots, fade_chance=0.3))
