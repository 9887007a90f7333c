"""alf.utils.visualizer.critic_network_visualizer against grids computed by hand."""

import numpy as np
import pytest
import torch

from alf.utils.visualizer import critic_network_visualizer


def known_critic(inputs):
    """Two outputs per (observation, action): obs.sum * a0 + a1^2 and a2 - obs[0]."""
    obs, act = inputs
    return torch.stack([obs.sum(-1) * act[:, 0] + act[:, 1] ** 2, act[:, 2] - obs[:, 0]], dim=-1)


def test_grid_of_a_known_function(device):
    obs = torch.tensor([[1.0, 2.0], [-0.5, 0.25], [3.0, 0.0]], device=device)
    ul = torch.tensor([1.0, -1.0, 0.5], device=device)
    ur = torch.tensor([1.0, 1.0, 0.5], device=device)
    ll = torch.tensor([-1.0, -1.0, 2.0], device=device)
    H, W = 4, 5
    img = critic_network_visualizer(known_critic, obs, ul, ur, ll, H, W)
    assert tuple(img.shape) == (3, 2, H, W) and img.device.type == device.type

    o, a_ul, a_ur, a_ll = (t.cpu().double().numpy() for t in (obs, ul, ur, ll))
    expected = np.zeros((3, 2, H, W))
    for b in range(3):
        for i in range(H):
            for j in range(W):
                a = a_ul + i / (H - 1) * (a_ll - a_ul) + j / (W - 1) * (a_ur - a_ul)
                expected[b, 0, i, j] = o[b].sum() * a[0] + a[1] ** 2
                expected[b, 1, i, j] = a[2] - o[b, 0]
    np.testing.assert_allclose(img.cpu().double().numpy(), expected, atol=1e-5)
    # the corners: row 0 goes upper-left -> upper-right, column 0 upper-left -> lower-left
    assert img[0, 0, 0, 0].item() == pytest.approx(3 * 1 + 1)
    assert img[0, 0, 0, -1].item() == pytest.approx(3 * 1 + 1)
    assert img[0, 0, -1, 0].item() == pytest.approx(3 * -1 + 1)
    lower_right = a_ur + a_ll - a_ul
    assert img[0, 1, -1, -1].item() == pytest.approx(lower_right[2] - 1)


def test_nested_observation_scalar_output_and_single_row():
    calls = []

    def net(inputs):
        (obs, act) = inputs
        calls.append((obs["x"].shape, obs["y"].shape, act.shape))
        return obs["x"][:, 0] * act[:, 0] + obs["y"].sum(dim=(1, 2)) * act[:, 1]  # [B*H*W]

    obs = {"x": torch.tensor([[2.0], [3.0]]), "y": torch.ones(2, 2, 3)}
    ul, ur, ll = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    img = critic_network_visualizer(net, obs, ul, ur, ll, H=1, W=3, batch_size=2)
    assert calls == [(torch.Size([6, 1]), torch.Size([6, 2, 3]), torch.Size([6, 2]))]
    # H = 1: the single row is the upper edge, a = (j / 2, 1)
    expected = [[[[x * j / 2 + 6.0 for j in range(3)]]] for x in (2.0, 3.0)]
    np.testing.assert_allclose(img.numpy(), np.array(expected), atol=1e-6)


def test_no_gradient_is_recorded():
    weight = torch.ones(2, requires_grad=True)
    img = critic_network_visualizer(
        lambda inp: inp[1] @ weight,
        torch.zeros(1, 1),
        torch.zeros(2),
        torch.ones(2),
        -torch.ones(2),
        H=2,
        W=2,
    )
    assert not img.requires_grad


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(action_upper_left=[0.0, 0.0]), TypeError, "action_upper_left must be a tensor"),
        (dict(action_lower_left=torch.zeros(3)), ValueError, "must have one shape"),
        (
            dict(action_upper_right=torch.zeros(2, dtype=torch.int64)),
            ValueError,
            "action_upper_right must be a floating-point tensor",
        ),
        (dict(H=0), ValueError, "H must be >= 1, got 0"),
        (dict(W=2.0), TypeError, "W must be an int, got float"),
        (dict(batch_size=3), ValueError, "batch_size=3"),
        (dict(net=lambda inp: inp[1][:1]), ValueError, "first dimension B \\* H \\* W = 8"),
        (dict(net=lambda inp: None), TypeError, "net must return a tensor"),
        (dict(observation=[[0.0], [1.0]]), TypeError, "observation must be a \\(nest of\\) tensor"),
        (dict(observation=torch.tensor(1.0)), TypeError, "observation must be a"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    args = dict(
        net=lambda inp: inp[1].sum(-1),
        observation=torch.zeros(2, 1),
        action_upper_left=torch.zeros(2),
        action_upper_right=torch.ones(2),
        action_lower_left=-torch.ones(2),
        H=2,
        W=2,
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        critic_network_visualizer(**args)
