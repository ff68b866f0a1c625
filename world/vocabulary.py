"""Titles, descriptions and channel names for the generated uploads.

On-topic uploads talk like gameplay channels ("speedrun", "playthrough", "world 1-2",
"any%", "100% walkthrough", "no commentary"). Off-topic ones carry a word the keyword rules
must reject ("unboxing", "trailer", "recipe", ...), and often a word a platformer search
also matches ("speedrun", "level", "world", "jump", "game") so that search finds them.
"""

import numpy as np

from world.timeline import GAME_NAMES, VideoPlan

GAMEPLAY_TITLES = (
    "{game} - World {world}-{stage} Playthrough (No Commentary)",
    "{game} Any% Speedrun in {minutes}:{seconds:02d}",
    "{game} 100% Walkthrough Part {part}",
    "Let's Play {game} #{part} - the {theme} levels",
    "{game} World {world}-{stage} Speedrun (any%)",
    "{game} Full Game Longplay, no deaths",
    "Retro 2D platformer gameplay: {game} world {world}-{stage}",
    "{game} | {theme} world playthrough [{fps}fps]",
)
GAMEPLAY_DESCRIPTIONS = (
    "Playthrough of {game}, a retro 2D platformer. Worlds {world}-1 to {world}-{stage}. No commentary, just gameplay.",
    "My best run so far. Any% rules, no glitches. Platformer speedrun recorded at {fps} fps.",
    "100% walkthrough of every level: all coins, all secrets. Part {part} of the series.",
    "Chill platformer gameplay in the {theme} world. Jumping, running, stomping enemies.",
)
FACECAM_NOTES = ("Live reaction with facecam!", "Streamed live, facecam in the corner.")
LETTERBOX_NOTES = ("Captured on original hardware in 4:3.", "Old capture card, sorry for the black bars.")

OFFTOPIC_TITLES = {
    "unboxing": ("Unboxing the new {gadget} - first impressions", "{gadget} unboxing speedrun (under 5 minutes)"),
    "trailer": ("{movie} - Official Movie Trailer", "{movie} Final Trailer | World Premiere"),
    "cooking": ("Easy {dish} recipe | cooking at home", "Speedrun cooking: {dish} in 10 minutes"),
    "vlog": ("Morning routine vlog - a day in my life", "Travel vlog: around the world, part {part}"),
    "review": ("{gadget} review after 6 months", "Is the {gadget} worth it? Honest review"),
    "workout": ("Jump rope workout for beginners - level {part}", "Full body workout, no equipment"),
}
OFFTOPIC_DESCRIPTIONS = {
    "unboxing": "Unboxing and setting up the {gadget}. Links to the product below.",
    "trailer": "Official trailer for {movie}. In cinemas this summer.",
    "cooking": "Today's recipe: {dish}. Ingredients and steps in the pinned comment.",
    "vlog": "A day in my life. Thanks for watching my vlog!",
    "review": "My honest review of the {gadget}: battery, screen, camera.",
    "workout": "A short home workout. Warm up first and drink water.",
}
GADGETS = ("Phone X12", "GameBox Mini", "SmartWatch 3", "Pixel Buds", "RetroStation console")
MOVIES = ("Shadow Protocol", "The Last Orbit", "Midnight Harbor", "Iron Meadow")
DISHES = ("pasta carbonara", "banana bread", "vegetable curry", "pancakes")

GAMEPLAY_CHANNELS = ("PixelRunner", "RetroPlatformerPlays", "SpeedyJumps", "NoCommentaryGaming", "LevelUpLongplays")
OFFTOPIC_CHANNELS = {
    "unboxing": "GadgetUnboxed", "trailer": "CineTrailersHD", "cooking": "HomeKitchenAna",
    "vlog": "DailyVlogLife", "review": "HonestTechReviews", "workout": "FitWithJo",
}
LICENSES = ("Creative Commons Attribution license (reuse allowed)", "CC BY 4.0", "CC BY-SA 4.0", "CC0 1.0")


def gameplay_metadata(plan: VideoPlan, rng: np.random.Generator) -> dict:
    """Title, description and uploader of an on-topic upload, in keeping with its shots."""
    gameplay = [shot for shot in plan.shots if shot.kind == "gameplay"]
    named = [shot.text[0] for shot in plan.shots if shot.kind in ("title", "menu")]
    fields = {
        "game": named[0] if named else str(rng.choice(GAME_NAMES)),
        "world": int(rng.integers(1, 9)), "stage": int(rng.integers(1, 5)), "part": int(rng.integers(1, 30)),
        "minutes": int(rng.integers(3, 40)), "seconds": int(rng.integers(60)),
        "theme": gameplay[0].theme, "fps": plan.fps,
    }
    description = str(rng.choice(GAMEPLAY_DESCRIPTIONS)).format(**fields)
    junk = gameplay[0].junk
    if junk == "facecam":
        description += " " + str(rng.choice(FACECAM_NOTES))
    elif junk == "letterbox":
        description += " " + str(rng.choice(LETTERBOX_NOTES))
    return {"title": str(rng.choice(GAMEPLAY_TITLES)).format(**fields), "description": description,
            "uploader": str(rng.choice(GAMEPLAY_CHANNELS))}


def offtopic_metadata(topic: str, rng: np.random.Generator) -> dict:
    """Title, description and uploader of an off-topic upload about `topic`."""
    fields = {"gadget": str(rng.choice(GADGETS)), "movie": str(rng.choice(MOVIES)),
              "dish": str(rng.choice(DISHES)), "part": int(rng.integers(1, 10))}
    return {"title": str(rng.choice(OFFTOPIC_TITLES[topic])).format(**fields),
            "description": OFFTOPIC_DESCRIPTIONS[topic].format(**fields),
            "uploader": OFFTOPIC_CHANNELS[topic]}
