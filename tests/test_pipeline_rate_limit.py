"""The token bucket behind the cluster-wide download rate limit (pipeline/rate_limit.py)."""

import pytest

from pipeline.rate_limit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_free_then_starts_are_spaced_by_the_rate():
    """The first `burst` reservations wait 0; later ones wait 1/rate more each."""
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=FakeClock())
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])


def test_tokens_refill_with_time_up_to_the_burst():
    """After idle time the bucket refills, but never past `burst`."""
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=2, clock=clock)
    bucket.reserve(), bucket.reserve()
    clock.now += 10.0
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 1.0])


@pytest.mark.parametrize("rate, burst", [(0.0, 1), (1.0, 0)])
def test_bad_settings_are_rejected(rate, burst):
    """A rate <= 0 or a burst < 1 is a configuration error."""
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
