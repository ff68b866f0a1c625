"""Misbehaviour on request: what the local video site does wrong for one video, and when.

A Fault applies to the media requests (GET or HEAD of /media/<id>.mp4) of one video id;
watch pages, the search feed and the JSON metadata always behave. `times` limits a fault to
the first N media requests of that id (then the site behaves); None means every request.
"""

import dataclasses

FAULT_KINDS = ("slow", "status", "truncate", "corrupt", "no_length")
FAULT_STATUSES = (403, 429, 500, 503)


@dataclasses.dataclass(frozen=True)
class Fault:
    """One way a video's media requests go wrong.

    kind "slow":     wait `delay_s` before the response starts; with `bytes_per_s`, also
                     throttle the body to that rate.
    kind "status":   answer HTTP `status` (403 / 429 / 500 / 503) with a short text body and,
                     when `retry_after` is set, a Retry-After header (whole seconds).
    kind "truncate": promise the full Content-Length, send `fraction` of it, close the
                     connection.
    kind "corrupt":  full length, every byte XORed with 0xA5 (the same at every offset, so
                     ranges agree), so ffprobe/ffmpeg cannot read the file.
    kind "no_length": the whole file (Range ignored) with no Content-Length, the body ending
                     when the connection closes; the watch page then announces no size either
                     (a site that does not know it), so only the bytes received can tell.

    Search faults (`VideoSite(search_faults={query: Fault(...)})`) use kind "slow" on the
    search feed of that exact query: `delay_s` before the answer, then `bytes_per_s` pacing.
    """

    kind: str
    times: int | None = None
    status: int = 503
    retry_after: int | None = None
    delay_s: float = 2.0
    bytes_per_s: int | None = None
    fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault times must be >= 1 or None, got {self.times}")
        if self.status not in FAULT_STATUSES:
            raise ValueError(f"fault status must be one of {FAULT_STATUSES}, got {self.status}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError(f"fault retry_after must be >= 0, got {self.retry_after}")
        if self.delay_s < 0:
            raise ValueError(f"fault delay_s must be >= 0, got {self.delay_s}")
        if self.bytes_per_s is not None and self.bytes_per_s < 1:
            raise ValueError(f"fault bytes_per_s must be >= 1, got {self.bytes_per_s}")
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"fault fraction must be in [0, 1), got {self.fraction}")

    def applies_to(self, request_number: int) -> bool:
        """Whether the `request_number`-th media request of the video (from 1) misbehaves."""
        return self.times is None or request_number <= self.times


# The positional ARG of each kind in `--fault ID=KIND[:ARG]`.
_POSITIONAL = {"slow": "delay_s", "status": "status", "truncate": "fraction"}
_CONVERTERS = {
    "times": int,
    "status": int,
    "retry_after": int,
    "delay_s": float,
    "bytes_per_s": int,
    "fraction": float,
}


def parse_fault(spec: str) -> tuple[str, Fault]:
    """Parse a CLI fault `ID=KIND[:VALUE][,KEY=VALUE...]` into (video id, Fault).

    VALUE is the kind's main setting: seconds for slow, the code for status, the fraction for
    truncate. KEYs are Fault fields. Examples: "abc=status:429,times=2,retry_after=1",
    "abc=slow:3", "abc=slow:0,bytes_per_s=20000", "abc=truncate:0.3", "abc=corrupt".
    """
    video_id, sep, rest = spec.partition("=")
    if not sep or not video_id or not rest:
        raise ValueError(f"fault {spec!r} is not ID=KIND[:ARG]")
    kind, _, arg = rest.partition(":")
    settings: dict[str, object] = {}
    for position, part in enumerate(arg.split(",") if arg else []):
        key, has_key, value = part.partition("=")
        if not has_key:
            if position > 0 or kind not in _POSITIONAL:
                raise ValueError(f"fault {spec!r}: unexpected value {part!r}")
            key, value = _POSITIONAL[kind], part
        if key not in _CONVERTERS:
            raise ValueError(f"fault {spec!r}: unknown setting {key!r} (known: {', '.join(_CONVERTERS)})")
        try:
            settings[key] = _CONVERTERS[key](value)
        except ValueError:
            raise ValueError(f"fault {spec!r}: {key} must be a number, got {value!r}") from None
    return video_id, Fault(kind, **settings)
