"""alf.utils.sl_utils against NumPy formulas and brute force."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from alf.data_structures import LossInfo
from alf.utils import sl_utils


def _brute_force_auc(inliers, outliers):
    wins = [(o > i) + 0.5 * (o == i) for o in outliers for i in inliers]
    return float(np.mean(wins))


@given(
    n_in=st.integers(1, 30),
    n_out=st.integers(1, 30),
    ties=st.booleans(),
    seed=st.integers(0, 10000),
)
def test_auc_score_matches_pairwise_count(n_in, n_out, ties, seed):
    rng = np.random.RandomState(seed)
    inliers = rng.standard_normal(n_in)
    outliers = rng.standard_normal(n_out) + 0.5
    if ties:
        inliers, outliers = np.round(inliers), np.round(outliers)
    score = sl_utils.auc_score(torch.tensor(inliers), torch.tensor(outliers))
    assert isinstance(score, float)
    assert score == pytest.approx(_brute_force_auc(inliers, outliers), abs=1e-12)


def test_auc_score_extremes_and_bad_input():
    assert sl_utils.auc_score(np.zeros(5), np.ones((2, 3))) == 1.0
    assert sl_utils.auc_score([1.0, 2.0], [0.0]) == 0.0
    assert sl_utils.auc_score([1.0], [1.0]) == 0.5
    with pytest.raises(ValueError, match="outliers"):
        sl_utils.auc_score([1.0], [])
    with pytest.raises(ValueError, match="inliers"):
        sl_utils.auc_score([np.nan], [1.0])


def _np_cross_entropy(logits, target):
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, target[..., None], -1)[..., 0]


@pytest.mark.parametrize(
    "out_shape, target_shape",
    [((6, 4), (6,)), ((6, 4), (6, 1)), ((6, 3, 4), (6, 3)), ((6, 3, 4), (6, 3, 1))],
)
def test_classification_loss(device, out_shape, target_shape):
    rng = np.random.RandomState(0)
    logits = rng.standard_normal(out_shape)
    target = rng.randint(0, 4, target_shape)
    info = sl_utils.classification_loss(
        torch.tensor(logits, device=device), torch.tensor(target, device=device)
    )
    assert isinstance(info, LossInfo)
    t = target.reshape(out_shape[:-1])
    assert info.loss.item() == pytest.approx(_np_cross_entropy(logits, t).mean(), rel=1e-10)
    assert info.extra.item() == pytest.approx((logits.argmax(-1) == t).mean())


def test_classification_loss_bad_shapes():
    with pytest.raises(ValueError, match="target"):
        sl_utils.classification_loss(torch.zeros(6, 4), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="output"):
        sl_utils.classification_loss(torch.zeros(6), torch.zeros(6, dtype=torch.long))


@pytest.mark.parametrize("shape", [(7, 1), (7, 3, 1)])
def test_regression_loss(device, shape):
    rng = np.random.RandomState(1)
    output, target = rng.standard_normal((2,) + shape)
    info = sl_utils.regression_loss(
        torch.tensor(output, device=device), torch.tensor(target, device=device)
    )
    assert info.loss.item() == pytest.approx(((output - target) ** 2).mean(), rel=1e-10)
    assert info.extra == ()
    with pytest.raises(ValueError, match="target"):
        sl_utils.regression_loss(torch.zeros(shape), torch.zeros(8, 1))


class _Ensemble(nn.Module):
    """Three linear predictors; returns ALF-style ``(output [b, N, D], state)``."""

    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(5, 2) for _ in range(3))

    def forward(self, x):
        return torch.stack([h(x) for h in self.heads], dim=1), ()


def test_predict_dataset(device):
    torch.manual_seed(0)
    data = torch.randn(23, 5)
    loader = DataLoader(TensorDataset(data, torch.zeros(23)), batch_size=4)
    single = nn.Linear(5, 2).to(device)
    with torch.no_grad():
        out = sl_utils.predict_dataset(single, loader)
        assert out.shape == (1, 23, 2)
        torch.testing.assert_close(out[0], single(data.to(device)))
        ensemble = _Ensemble().to(device)
        out = sl_utils.predict_dataset(ensemble, loader)
        assert out.shape == (3, 23, 2)
        for n, head in enumerate(ensemble.heads):
            torch.testing.assert_close(out[n], head(data.to(device)))
        # Batches without targets, and a plain function.
        out = sl_utils.predict_dataset(lambda x: 2 * x, [data[:10], data[10:]])
        torch.testing.assert_close(out, 2 * data.unsqueeze(0))
    with pytest.raises(ValueError, match="testset"):
        sl_utils.predict_dataset(single, [])
