"""Takedown stage: search results whose video or uploader is on the takedown list are dropped.

Applied to the search's rows before anything is downloaded, so a taken-down video is never
fetched; its manifest row says so ("takedown: <the entry's reason>").
"""

from collections.abc import Mapping, Sequence

from pipeline.rows import Batch, dropped, is_ok, to_batch, to_rows
from schemas.takedowns import TakedownList

STAGE = "search"


class TakedownFilter:
    """Stage: drops the rows of a search batch that a takedown entry covers; others pass unchanged.

    Rows need `video_id` and `uploader`.
    """

    def __init__(self, takedowns: TakedownList) -> None:
        self.takedowns = takedowns

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        return to_batch([self.judge(row) for row in to_rows(batch)], columns=list(batch))

    def judge(self, row: Mapping) -> dict:
        entry = self.takedowns.match(row["video_id"], row.get("uploader")) if is_ok(row) else None
        if entry is None:
            return dict(row)
        return dropped(row, STAGE, f"takedown: {entry.reason} (requested {entry.requested.isoformat()})")
