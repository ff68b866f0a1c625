"""The base of errors a user can fix: a bad config, a missing checkpoint, folder or shard.

`genie` (jobs/cli.py) prints such an error as one line, `genie: error: ...`, and exits
non-zero without a traceback; any other exception is a bug and keeps its traceback.
"""


class GenieError(Exception):
    """A user-facing error whose message says what to fix."""
