import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from distortion.metrics.verification import (
    best_threshold,
    kfold_accuracy,
    pair_scores,
    tar_at_far,
    threshold_at_far,
    verification_metrics,
)


def sklearn_eer(scores: np.ndarray, labels: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    i = np.argmin(np.abs(fpr - (1 - tpr)))
    return (fpr[i] + 1 - tpr[i]) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_scikit_learn(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (2000,), generator=g)
    scores = (torch.rand(2000, generator=g) + 0.4 * labels).clamp(0, 1)
    metrics = verification_metrics()
    metrics.update(scores, labels)
    values = metrics.compute()
    s, y = scores.numpy(), labels.numpy()
    assert values["eer"].item() == pytest.approx(sklearn_eer(s, y), abs=1e-6)
    assert values["auroc"].item() == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    fpr, tpr, _ = roc_curve(y, s)
    assert values["tar_far_1e-2"].item() == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-6)
    assert values["tar_far_1e-3"].item() == pytest.approx(tpr[fpr <= 0.001].max(), abs=1e-6)


def test_separable_scores_have_zero_eer() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    metrics = verification_metrics()
    metrics.update(torch.tensor([0.1, 0.2, 0.8, 0.9]), labels)
    assert metrics.compute()["eer"].item() == 0.0


def test_pair_scores_rank_closer_pairs_higher_and_stay_in_unit_interval() -> None:
    a = torch.zeros(3, 2)
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    s = pair_scores(a, b)
    assert s[0] == 1.0 and s[0] > s[1] > s[2] > 0


def test_tar_at_far_with_no_admissible_threshold_is_zero() -> None:
    assert tar_at_far(torch.tensor([0.5, 1.0]), torch.tensor([0.9, 1.0]), 0.01).item() == 0.0


@pytest.mark.parametrize("far", [0.0, 0.001, 0.01, 0.1])
def test_threshold_at_far_is_the_operating_point_of_scikit_learns_roc(far: float) -> None:
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (5000,), generator=g)
    scores = torch.rand(5000, generator=g, dtype=torch.float64) + 0.5 * labels
    threshold = threshold_at_far(scores[labels == 0], far)
    accepted = scores >= threshold
    assert accepted[labels == 0].double().mean() <= far  # never above the allowed FAR
    fpr, tpr, _ = roc_curve(labels.numpy(), scores.numpy())  # ... and the best TAR that allows
    assert accepted[labels == 1].double().mean().item() == pytest.approx(tpr[fpr <= far].max(), abs=1e-9)


def test_threshold_at_far_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="far"):
        threshold_at_far(torch.rand(10), 1.0)
    with pytest.raises(ValueError, match="no impostor"):
        threshold_at_far(torch.tensor([]), 0.1)


def _brute_force_best_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    candidates = np.concatenate([[scores.min() - 1], scores, [scores.max() + 1]])
    return max(accuracy_score(same, scores >= t) for t in candidates)


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_reaches_the_brute_force_accuracy(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    same = torch.rand(200, generator=g) < 0.5
    scores = torch.round((torch.rand(200, generator=g) + 0.6 * same) * 20) / 20  # many ties
    t = best_threshold(scores, same)
    ours = accuracy_score(same.numpy(), (scores.double() >= t).numpy())
    assert ours == pytest.approx(_brute_force_best_accuracy(scores.numpy(), same.numpy()))


def test_kfold_accuracy_chooses_each_threshold_on_the_other_folds() -> None:
    g = torch.Generator().manual_seed(0)
    same = torch.rand(600, generator=g) < 0.5
    scores = torch.rand(600, generator=g) + 0.8 * same
    folds = torch.arange(600) % 10
    accuracies = kfold_accuracy(scores, same, folds)
    for k in range(10):
        train, test = folds != k, folds == k
        best = _brute_force_best_accuracy(scores[train].numpy(), same[train].numpy())
        t = best_threshold(scores[train], same[train])
        assert accuracy_score(same[train].numpy(), (scores[train].double() >= t).numpy()) == pytest.approx(best)
        assert accuracies[k] == pytest.approx(accuracy_score(same[test].numpy(), (scores[test].double() >= t).numpy()))
