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


def test_shares_together_start_no_more_than_the_whole_bucket():
    """Four workers, each with share(4), get as many starts within a minute as one bucket would."""
    clock = FakeClock()
    whole = TokenBucket(rate_per_s=4.0, burst=8, clock=clock)
    shares = [whole.share(4) for _ in range(4)]

    def starts_within(bucket: TokenBucket, seconds: float) -> int:
        count = 0
        while bucket.reserve() <= seconds:
            count += 1
        return count

    assert sum(starts_within(share, 60.0) for share in shares) == starts_within(whole, 60.0) == 8 + 4 * 60


@pytest.mark.parametrize("rate, burst", [(0.0, 1), (1.0, 0)])
def test_bad_settings_are_rejected(rate, burst):
    """A rate <= 0 or a burst < 1 is a configuration error."""
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
