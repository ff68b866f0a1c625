"""ΔtPSNR (Genie, Sec. 3.3): how much the latent actions control what the world generates.

    ΔtPSNR = PSNR(x_t, x̂_t) - PSNR(x_t, x̂'_t)

x_t is the real frame t of a video, x̂_t the frame t the dynamics model generates from the
real first frame x_0 when playing the LAM's actions inferred from the real frames x_0..x_t,
and x̂'_t the same with actions drawn uniformly at random. The paper reports t = 4. Here it
is the mean over video windows of the per-window difference (the difference of the mean
PSNRs), with a percentile bootstrap confidence interval that resamples whole clips, since
windows cut from one clip are not independent. Both rollouts of a window use the same
MaskGIT random draws (evals/rollouts.py), so the difference measures the actions alone.
"""

import dataclasses

import numpy as np

PAPER_T = 4


@dataclasses.dataclass(frozen=True)
class DeltaPSNR:
    """ΔtPSNR at frame t with its bootstrap interval."""

    t: int
    value: float  # mean of PSNR(inferred) - PSNR(random) at frame t, dB
    low: float  # bootstrap interval at `confidence`
    high: float
    confidence: float
    inferred_psnr: float  # mean PSNR at frame t with the inferred actions, dB
    random_psnr: float  # ... with random actions
    windows: int
    groups: int  # clips (the bootstrap's resampling unit)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def bootstrap_interval(values: np.ndarray, groups: np.ndarray | None = None, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (n,), resampling whole groups
    (e.g. the clip each value came from) with replacement; each value its own group if None."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty 1-D array of values, got shape {values.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    _, group_index = np.unique(np.arange(len(values)) if groups is None else np.asarray(groups), return_inverse=True)
    sums = np.bincount(group_index, weights=values)  # per group
    counts = np.bincount(group_index).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(resamples, len(sums)))  # (resamples, groups)
    means = sums[picks].sum(1) / counts[picks].sum(1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def delta_psnr(psnr_inferred: np.ndarray, psnr_random: np.ndarray, t: int = PAPER_T, groups: np.ndarray | None = None,
               confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> DeltaPSNR:
    """ΔtPSNR from per-frame PSNR tables (windows, n) of the generated frames 1..n with
    inferred and with random actions (column k-1 is frame k); groups (windows,) name the clip
    of each window for the bootstrap."""
    inferred, random = np.asarray(psnr_inferred, np.float64), np.asarray(psnr_random, np.float64)
    if inferred.shape != random.shape or inferred.ndim != 2:
        raise ValueError(f"need two (windows, frames) PSNR tables of one shape, got {inferred.shape} and {random.shape}")
    if not 1 <= t <= inferred.shape[1]:
        raise ValueError(f"t = {t} is outside the {inferred.shape[1]} generated frames")
    difference = inferred[:, t - 1] - random[:, t - 1]
    low, high = bootstrap_interval(difference, groups, confidence, resamples, seed)
    n_groups = len(difference) if groups is None else len(np.unique(np.asarray(groups)))
    return DeltaPSNR(t, float(difference.mean()), low, high, confidence, float(inferred[:, t - 1].mean()),
                     float(random[:, t - 1].mean()), len(difference), n_groups)
