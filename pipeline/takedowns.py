"""Takedown stage: videos whose id or uploader is on the takedown list are dropped.

Applied to the search's rows, so a listed video is never downloaded; and again right after
download, for uploader entries where the search result did not name the uploader (a feed's
entries may not; the video's own metadata does), so such a video is never processed. Its
manifest row says so ("takedown: <the entry's reason> (requested <date>)").
"""

from collections.abc import Mapping, Sequence

from pipeline.rows import Batch, dropped, is_ok, to_batch, to_rows
from schemas.takedowns import TakedownList


class TakedownFilter:
    """Stage: drops the rows of a search batch that a takedown entry covers; others pass unchanged.

    Rows need `video_id` and `uploader`.
    """

    def __init__(self, takedowns: TakedownList, stage: str = "search") -> None:
        self.takedowns = takedowns
        self.stage = stage

    def __call__(self, batch: Mapping[str, Sequence]) -> Batch:
        return to_batch([self.judge(row) for row in to_rows(batch)], columns=list(batch))

    def judge(self, row: Mapping) -> dict:
        entry = self.takedowns.match(row["video_id"], row.get("uploader")) if is_ok(row) else None
        if entry is None:
            return dict(row)
        return dropped(row, self.stage, f"takedown: {entry.reason} (requested {entry.requested.isoformat()})")
