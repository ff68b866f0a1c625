import dataclasses
import json
import re
import subprocess

import pytest

from schemas.config import ConfigError, from_dict
from world.corpus import CorpusConfig, generate_corpus, plan_corpus
from world.themes import DARK_THEMES, THEME_NAMES

SMALL = CorpusConfig(seed=7, videos=4, offtopic=1, min_duration_s=3.0, max_duration_s=4.0)
CATALOG_KEYS = {"id", "file", "title", "description", "uploader", "license", "duration_s",
                "width", "height", "fps", "upload_date"}
PLATFORMER_WORDS = re.compile(r"speedrun|playthrough|walkthrough|let's play|longplay|platformer|world \d-\d", re.I)
REJECTED_WORDS = re.compile(r"unboxing|trailer|recipe|cooking|vlog|review|workout", re.I)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, generate_corpus(SMALL, root)


def test_corpus_has_the_contract_layout(corpus):
    """catalog.json lists every upload; each has videos/<id>.mp4 and truth/<id>.json."""
    root, catalog = corpus
    on_disk = json.loads((root / "catalog.json").read_text())
    assert on_disk == catalog and catalog["version"] == 1
    ids = [entry["id"] for entry in catalog["videos"]]
    assert len(ids) == len(set(ids)) == SMALL.videos
    assert sorted(path.name for path in (root / "videos").iterdir()) == sorted(f"{i}.mp4" for i in ids)
    assert sorted(path.name for path in (root / "truth").iterdir()) == sorted(f"{i}.json" for i in ids)
    for entry in catalog["videos"]:
        assert set(entry) == CATALOG_KEYS
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", entry["id"]) and entry["file"] == f"videos/{entry['id']}.mp4"
        assert re.fullmatch(r"20[12]\d[01]\d[0-3]\d", entry["upload_date"])
        assert (entry["width"], entry["height"], entry["fps"]) == (640, 360, 30)


def test_on_and_off_topic_counts_match_the_config(corpus):
    """The sidecars mark exactly `offtopic` uploads off-topic."""
    root, catalog = corpus
    truths = [json.loads((root / "truth" / f"{e['id']}.json").read_text()) for e in catalog["videos"]]
    assert sum(not truth["on_topic"] for truth in truths) == SMALL.offtopic
    assert sum(truth["on_topic"] for truth in truths) == SMALL.videos - SMALL.offtopic


def test_catalog_durations_match_the_files(corpus):
    """Each entry's duration equals its sidecar's frames / fps and ffprobe's stream duration."""
    root, catalog = corpus
    for entry in catalog["videos"]:
        truth = json.loads((root / "truth" / f"{entry['id']}.json").read_text())
        command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=duration",
                   "-of", "csv=p=0", str(root / entry["file"])]
        probed = float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        assert entry["duration_s"] == pytest.approx(truth["n_frames"] / truth["fps"], abs=1e-3)
        assert probed == pytest.approx(entry["duration_s"], abs=0.05)


def test_titles_speak_platformer_or_carry_a_rejectable_word():
    """On-topic titles or descriptions use platformer words; off-topic ones a word to reject."""
    config = CorpusConfig(seed=3, videos=24, offtopic=8, min_duration_s=2.0, max_duration_s=2.5)
    for upload in plan_corpus(config):
        text = upload.entry["title"] + " " + upload.entry["description"]
        if upload.plan.on_topic:
            assert PLATFORMER_WORDS.search(text) and not REJECTED_WORDS.search(text), text
        else:
            assert REJECTED_WORDS.search(text), text


def test_a_seed_fixes_the_corpus():
    """The same seed plans the same ids, titles and shots; another seed plans others."""
    config = CorpusConfig(seed=1, videos=3, offtopic=1, min_duration_s=2.0, max_duration_s=2.5)
    first, second = plan_corpus(config), plan_corpus(config)
    assert [u.entry for u in first] == [u.entry for u in second]
    assert [u.plan for u in first] == [u.plan for u in second]
    other = plan_corpus(dataclasses.replace(config, seed=2))
    assert {u.entry["id"] for u in other}.isdisjoint(u.entry["id"] for u in first)


@pytest.mark.parametrize("overrides, field", [
    ({"width": 640, "height": 480}, "16:9"),
    ({"width": 320, "height": 180}, "640x360"),
    ({"fps": 25}, "fps"),
    ({"offtopic": 9}, "offtopic"),
    ({"min_duration_s": 30.0, "max_duration_s": 10.0}, "min_duration_s"),
    ({"themes": ["meadow", "swamp"]}, "'themes'"),
    ({"themes": ["castle"]}, "'themes'"),
])
def test_bad_config_is_rejected_naming_the_field(overrides, field):
    """Impossible corpus shapes are configuration errors that name what is wrong."""
    with pytest.raises(ConfigError, match=field):
        from_dict(CorpusConfig, overrides)


def test_themes_pick_the_looks_of_gameplay_and_the_default_mix_has_dark_ones():
    """CorpusConfig.themes limits gameplay (and title/menu) shots to those looks; the default
    mix is every theme, the dark ones included."""
    dark = dataclasses.replace(SMALL, videos=3, offtopic=0, themes=DARK_THEMES)
    used = {shot.theme for upload in plan_corpus(dark) for shot in upload.plan.shots if shot.theme}
    assert used and used <= set(DARK_THEMES)
    assert set(DARK_THEMES) < set(THEME_NAMES) == set(CorpusConfig().themes)
