"""The search rules of the Genie paper's Platformers set, with configurable word lists.

A video is kept when (1) its title has a platformer word, (2) its title or description has an
action word (speedrun, playthrough, ...), and (3) neither has a negating word (movie,
unboxing, ...). Words and phrases match whole words, case-insensitively, ignoring
punctuation: "mega man" matches "Mega-Man", "speedrun" does not match "speedrunner" (list
such variants explicitly).
"""

import dataclasses
import re
from collections.abc import Mapping, Sequence

from pipeline.rows import Batch, dropped, is_ok, ok, to_batch, to_rows

STAGE = "search"
_WORD = re.compile(r"[a-z0-9]+")


@dataclasses.dataclass(frozen=True)
class KeywordRules:
    """Word lists of the search rules (each entry a word or a phrase of words)."""

    # The title must hold one of these: the genre or a platformer's name.
    platformer_words: tuple[str, ...] = (
        "platformer", "platformers", "platforming", "platform game", "side scroller", "side scrolling",
        "sidescroller", "jump n run", "jump and run", "mario", "sonic", "celeste", "hollow knight",
        "super meat boy", "rayman", "kirby", "donkey kong", "mega man", "megaman", "castlevania",
        "metroid", "cuphead", "shovel knight", "spelunky", "crash bandicoot",
    )  # fmt: skip
    # The title or the description must hold one of these.
    action_words: tuple[str, ...] = (
        "speedrun", "speedruns", "speedrunning", "speed run", "playthrough", "play through",
        "walkthrough", "gameplay", "let s play", "lets play", "longplay", "full game",
        "no commentary", "any", "100",
    )  # fmt: skip
    # Neither title nor description may hold one of these.
    negative_words: tuple[str, ...] = (
        "movie", "film", "trailer", "unboxing", "review", "music video",
        "soundtrack", "ost", "cosplay", "toy", "toys", "lego", "plush", "cake", "recipe",
        "podcast", "news", "interview", "asmr",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("platformer_words", "action_words", "negative_words"):
            for word in getattr(self, name):
                if not _WORD.findall(word.lower()):
                    raise ValueError(f"{name}: {word!r} has no letters or digits")


class KeywordFilter:
    """Stage: keeps the rows of a search batch that pass the rules, drops the rest with a reason.

    Rows need `title` and `description`; rows that are not ok pass through unchanged.
    Reasons: "no_platformer_word", "no_action_word", "negative_word: <word>".
    """

    def __init__(self, rules: KeywordRules) -> None:
        self.rules = rules
        self._platformer = _phrases(rules.platformer_words)
        self._action = _phrases(rules.action_words)
        self._negative = _phrases(rules.negative_words)

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        return to_batch([self.judge(row) for row in to_rows(batch)], columns=list(batch))

    def judge(self, row: Mapping) -> dict:
        """The row, kept or dropped by the rules."""
        if not is_ok(row):
            return dict(row)
        title = _normalise(row.get("title") or "")
        both = f"{title}{_normalise(row.get('description') or '')}"
        negative = _first_match(self._negative, both)
        if negative is not None:
            return dropped(row, STAGE, f"negative_word: {negative}")
        if _first_match(self._platformer, title) is None:
            return dropped(row, STAGE, "no_platformer_word")
        if _first_match(self._action, both) is None:
            return dropped(row, STAGE, "no_action_word")
        return ok(row)


def _normalise(text: str) -> str:
    """Lower-case words separated and surrounded by single spaces: " mega man x "."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def _phrases(words: Sequence[str]) -> list[tuple[str, str]]:
    return [(word, _normalise(word)) for word in words]


def _first_match(phrases: list[tuple[str, str]], text: str) -> str | None:
    for word, padded in phrases:
        if padded in text:
            return word
    return None
