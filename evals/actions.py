"""Agreement of latent actions with true ones: normalised mutual information, accuracy under
the best many-to-one mapping, and the confusion matrix.

The offline world knows what was pressed (evals/world_truth.py reads it for ingested clips),
so these measure what the Genie paper could not: whether the LAM's codes are the game's
actions. Both measures ignore how codes are numbered. NMI is symmetric and normalised by the
arithmetic mean of the two entropies (scikit-learn's default), so 1 means each labelling
determines the other and 0 means they are independent. Many-to-one accuracy maps every
latent code to the true action it co-occurs with most (several codes may share one action),
the usual score for clusterings with more clusters than classes.

Transitions whose true action is unknown (label < 0: a title screen, a shot change) are left
out of every measure.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ActionAgreement:
    """How well latent codes match true actions over `count` transitions."""

    nmi: float
    accuracy: float  # under the best many-to-one mapping
    confusion: np.ndarray  # (num_latent, num_true) int64 counts: rows latent codes, columns true actions
    mapping: tuple[int, ...]  # latent code -> the true action it maps to (-1: code never used)
    count: int

    def to_dict(self) -> dict:
        return {"nmi": self.nmi, "accuracy": self.accuracy, "count": self.count,
                "mapping": list(self.mapping), "confusion": self.confusion.tolist()}


def confusion_matrix(latent, true, num_latent: int, num_true: int) -> np.ndarray:
    """(num_latent, num_true) counts of each (latent code, true action) pair; pairs whose true
    label is negative (unknown) are skipped."""
    if np.shape(latent) != np.shape(true):
        raise ValueError(f"latent and true labels differ in shape: {np.shape(latent)} vs {np.shape(true)}")
    latent, true = _labels(latent, "latent"), _labels(true, "true")
    known = true >= 0
    latent, true = latent[known], true[known]
    if (latent < 0).any() or (latent >= num_latent).any():
        raise ValueError(f"latent codes must be in [0, {num_latent}) where the true action is known")
    if (true >= num_true).any():
        raise ValueError(f"true actions must be below {num_true}")
    counts = np.bincount(latent * num_true + true, minlength=num_latent * num_true)
    return counts.reshape(num_latent, num_true)


def normalized_mutual_information(confusion: np.ndarray) -> float:
    """I(L; A) / mean(H(L), H(A)) from a confusion matrix of counts. 1.0 when both labellings
    are constant (they agree trivially), 0.0 when only one is; NaN for an empty matrix."""
    counts = np.asarray(confusion, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    joint = counts / total
    p_latent, p_true = joint.sum(1), joint.sum(0)
    h_latent, h_true = _entropy(p_latent), _entropy(p_true)
    if h_latent == 0 and h_true == 0:
        return 1.0
    nonzero = joint > 0
    outer = np.outer(p_latent, p_true)
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])).sum())
    return float(np.clip(mutual / ((h_latent + h_true) / 2), 0.0, 1.0))


def many_to_one_accuracy(confusion: np.ndarray) -> float:
    """Fraction of transitions right when each latent code stands for its most common true action."""
    counts = np.asarray(confusion)
    total = counts.sum()
    return float(counts.max(1).sum() / total) if total else float("nan")


def action_agreement(latent, true, num_latent: int, num_true: int) -> ActionAgreement:
    """Every measure at once. latent, true: equal-shape integer arrays (any shape, flattened)."""
    confusion = confusion_matrix(latent, true, num_latent, num_true)
    mapping = tuple(int(row.argmax()) if row.any() else -1 for row in confusion)
    return ActionAgreement(normalized_mutual_information(confusion), many_to_one_accuracy(confusion),
                           confusion, mapping, int(confusion.sum()))


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} labels must be integers, got {array.dtype}")
    return array.astype(np.int64).ravel()
