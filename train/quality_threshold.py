"""The quality model's figures and its keep threshold: precision, recall, ROC AUC, and the
lowest threshold that reaches a wanted precision."""

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the probability a random positive outscores a random negative,
    ties counted half); nan without both classes."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if not len(positives) or not len(negatives):
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(greater / (len(positives) * len(negatives)))


def precision_recall(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> tuple[float, float]:
    kept = probabilities >= threshold
    true_kept = int((kept & (labels == 1)).sum())
    precision = true_kept / int(kept.sum()) if kept.any() else 1.0
    recall = true_kept / int((labels == 1).sum()) if (labels == 1).any() else 1.0
    return precision, recall


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray, min_precision: float, fallback: float,
                     min_recall: float = 0.0, max_threshold: float = 1.0) -> float:
    """The lowest threshold whose precision reaches min_precision, but never so high that less
    than min_recall of the good clips stay kept: each halfway between the lowest score it keeps
    and the score below it. `fallback` when no threshold reaches min_precision or there is
    nothing to choose on. Never above max_threshold."""
    return min(max_threshold, _threshold(labels, probabilities, min_precision, fallback, min_recall))


def _threshold(labels: np.ndarray, probabilities: np.ndarray, min_precision: float, fallback: float,
               min_recall: float) -> float:
    if min_precision <= 0 or not (labels == 1).any():
        return fallback
    candidates = np.sort(np.unique(probabilities))
    by_precision = next((index for index, threshold in enumerate(candidates)
                         if precision_recall(labels, probabilities, float(threshold))[0] >= min_precision), None)
    if by_precision is None:
        return fallback
    good = np.sort(probabilities[labels == 1])[::-1]
    needed = int(np.ceil(min_recall * len(good) - 1e-9))
    by_recall = int(np.searchsorted(candidates, good[needed - 1])) if needed > 0 else len(candidates)
    index = min(by_precision, by_recall)
    # halfway down to the next lower score: the same clips kept, with a margin for footage
    # that scores a little lower than the validation clips did
    return float(candidates[index] if index == 0 else (candidates[index] + candidates[index - 1]) / 2)


def figures(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    precision, recall = precision_recall(labels, probabilities, threshold)
    return {"clips": int(len(labels)), "good": int(labels.sum()), "precision": round(precision, 4),
            "recall": round(recall, 4), "roc_auc": _rounded(roc_auc(labels, probabilities))}  # fmt: skip


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(value, 4)  # JSON has no NaN
