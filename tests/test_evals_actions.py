"""Agreement of latent with true actions (evals/actions.py) on labellings with known answers."""

import math

import numpy as np
import pytest

from evals.actions import action_agreement, confusion_matrix, many_to_one_accuracy, normalized_mutual_information


def test_a_lam_perfect_by_construction_has_nmi_one():
    """Codes that are the true actions under another numbering: NMI 1, accuracy 1, the mapping is the inverse."""
    true = np.random.default_rng(0).integers(8, size=2000)
    permutation = np.array([3, 7, 0, 5, 1, 6, 2, 4])
    agreement = action_agreement(permutation[true], true, num_latent=8, num_true=8)
    assert agreement.nmi == pytest.approx(1.0)
    assert agreement.accuracy == 1.0
    assert [agreement.mapping[code] for code in permutation] == list(range(8))


def test_independent_labels_have_nmi_near_zero():
    """Codes drawn independently of the actions: NMI ~0, accuracy ~ the commonest action's share."""
    rng = np.random.default_rng(1)
    true = rng.choice(8, size=50_000, p=[0.4] + [0.6 / 7] * 7)
    agreement = action_agreement(rng.integers(8, size=true.size), true, 8, 8)
    assert agreement.nmi < 0.005
    assert agreement.accuracy == pytest.approx(0.4, abs=0.01)


def test_nmi_matches_its_definition_on_a_small_table():
    """latent [0,0,1,1] vs true [0,1,1,1]: I = H(A) - H(A|L), normalised by the mean entropy."""
    h_true = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    mutual = h_true - 0.5 * math.log(2)
    expected = mutual / ((math.log(2) + h_true) / 2)
    confusion = confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 2, 2)
    assert confusion.tolist() == [[1, 1], [0, 2]]
    assert normalized_mutual_information(confusion) == pytest.approx(expected)
    assert many_to_one_accuracy(confusion) == 0.75


def test_more_codes_than_actions_are_mapped_many_to_one():
    """Each action split over two codes: every transition right under the mapping, NMI below 1."""
    true = np.random.default_rng(2).integers(4, size=4000)
    latent = true * 2 + np.arange(true.size) % 2
    agreement = action_agreement(latent, true, 8, 4)
    assert agreement.accuracy == 1.0
    assert agreement.mapping == (0, 0, 1, 1, 2, 2, 3, 3)
    assert 0.7 < agreement.nmi < 0.9


def test_unknown_true_actions_are_left_out():
    """Transitions labelled -1 count nowhere, whatever their code."""
    agreement = action_agreement([0, 1, 5, 5], [0, 1, -1, -1], 8, 8)
    assert agreement.count == 2 and agreement.nmi == pytest.approx(1.0) and agreement.mapping[5] == -1


def test_constant_codes_carry_no_information():
    """A collapsed codebook (one code for everything) against varied actions: NMI 0."""
    true = np.arange(100) % 4
    assert action_agreement(np.zeros(100, np.int64), true, 8, 4).nmi == 0.0


@pytest.mark.parametrize(("latent", "true", "message"), [
    ([0, 1], [0, 1, 2], "differ in shape"),
    ([0, 9], [0, 1], "latent codes must be in"),
    ([0, 1], [0, 8], "true actions must be below"),
    ([0.5, 1.0], [0, 1], "must be integers"),
])
def test_bad_labels_are_refused(latent, true, message):
    """Mismatched shapes, codes or actions out of range, and float labels raise ValueError."""
    with pytest.raises(ValueError, match=message):
        confusion_matrix(latent, true, 8, 8)
