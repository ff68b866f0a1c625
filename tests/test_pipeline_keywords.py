"""The search's keyword rules (pipeline/keywords.py)."""

import copy

import pytest

from pipeline.keywords import KeywordFilter, KeywordRules
from pipeline.rows import to_batch, to_rows


def row(title: str, description: str = "", status: str = "ok") -> dict:
    return {"video_id": title[:8], "title": title, "description": description, "status": status, "stage": "search", "reason": None}


def judge(*rows: dict) -> list[dict]:
    return to_rows(KeywordFilter(KeywordRules())(to_batch(rows)))


def test_platformer_title_with_action_word_is_kept():
    """A platformer title with an action word in the description is kept."""
    (kept,) = judge(row("Super Mario Bros. World 1-1", "a full playthrough"))
    assert (kept["status"], kept["reason"]) == ("ok", None)


@pytest.mark.parametrize("title, description, reason", [
    ("Unboxing my new blender", "kitchen gadget playthrough", "negative_word: unboxing"),
    ("Celeste speedrun", "official movie trailer", "negative_word: movie"),
    ("My morning routine", "a speedrun of my day", "no_platformer_word"),
    ("Hollow Knight", "relaxing music", "no_action_word"),
])
def test_rule_breakers_are_dropped_with_the_rule_as_reason(title, description, reason):
    """Each rule drops what breaks it and names itself (and the negating word) as the reason."""
    (dropped,) = judge(row(title, description))
    assert (dropped["status"], dropped["stage"], dropped["reason"]) == ("dropped", "search", reason)


def test_words_match_whole_words_across_punctuation():
    """'mega man' matches "Mega-Man" but 'ost' does not match "ghost" and 'any' not "anyone"."""
    hyphen, ghost, anyone = judge(row("Mega-Man 2 any% run"), row("Ghost level in Sonic gameplay"), row("Sonic, anyone?"))
    assert hyphen["status"] == "ok"
    assert ghost["status"] == "ok"
    assert anyone["reason"] == "no_action_word"


def test_word_lists_are_configurable():
    """A rule set with the offline world's game names keeps their videos."""
    rules = KeywordRules(platformer_words=("coin dash",), action_words=("longplay",), negative_words=())
    (kept,) = to_rows(KeywordFilter(rules)(to_batch([row("Coin Dash Full Game Longplay")])))
    assert kept["status"] == "ok"


def test_rows_that_are_not_ok_pass_through_and_input_is_unchanged():
    """A row already failed keeps its status and reason; the batch given is not modified."""
    batch = to_batch([row("Mario speedrun"), {**row("Mario speedrun", status="error"), "reason": "earlier"}])
    before = copy.deepcopy(batch)
    out = to_rows(KeywordFilter(KeywordRules())(batch))
    assert batch == before
    assert [(r["status"], r["reason"]) for r in out] == [("ok", None), ("error", "earlier")]


def test_a_word_without_letters_is_a_configuration_error():
    """A word list entry that has no letters or digits is rejected when the rules are built."""
    with pytest.raises(ValueError, match="action_words"):
        KeywordRules(action_words=("!!",))
