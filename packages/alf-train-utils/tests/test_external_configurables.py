"""external_configurables: gin bindings of the registered torch and ALF objects."""

import importlib

import gin
import gin.config
import numpy as np
import pytest
import torch

import alf.utils.dist_utils
import alf.utils.math_ops
import alf.utils.normalizers
from alf.utils import external_configurables

_MODULE = "alf_train_utils_tests.external_configurables"


@gin.configurable(module=_MODULE)
def ec_build(optimizer_ctor=None, scheduler_ctor=None, activation=None, normalizer_ctor=None):
    return optimizer_ctor, scheduler_ctor, activation, normalizer_ctor


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_gin_binding_uses_registered_torch_objects():
    gin.parse_config(
        """
        torch.optim.Adam.lr = 0.01
        torch.optim.Adam.betas = (0.5, 0.6)
        torch.optim.lr_scheduler.StepLR.step_size = 2
        torch.optim.lr_scheduler.StepLR.gamma = 0.5
        torch.nn.functional.leaky_relu.negative_slope = 0.3
        ec_build.optimizer_ctor = @torch.optim.Adam
        ec_build.scheduler_ctor = @torch.optim.lr_scheduler.StepLR
        ec_build.activation = @torch.nn.functional.leaky_relu
        """
    )
    optimizer_ctor, scheduler_ctor, activation, _ = ec_build()
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = optimizer_ctor([param])
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["betas"] == (0.5, 0.6)
    scheduler = scheduler_ctor(optimizer)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # StepLR by hand: lr * gamma ** (epoch // step_size)
    np.testing.assert_allclose(lrs, [0.01 * 0.5 ** (e // 2) for e in range(6)])
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(
        activation(torch.tensor(x)).numpy(), np.where(x > 0, x, 0.3 * x), rtol=1e-12
    )


def test_gin_binding_uses_registered_alf_objects():
    gin.parse_config(
        """
        alf.utils.math_ops.clipped_exp.clip_value_max = 1.0
        alf.utils.normalizers.ScalarAdaptiveNormalizer.speed = 4.0
        ec_build.activation = @alf.utils.math_ops.clipped_exp
        ec_build.normalizer_ctor = @alf.utils.normalizers.ScalarAdaptiveNormalizer
        """
    )
    _, _, activation, normalizer_ctor = ec_build()
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(
        activation(torch.tensor(x)).numpy(), np.exp(np.clip(x, -20, 1.0)), rtol=1e-12
    )
    normalizer = normalizer_ctor()
    assert isinstance(normalizer, alf.utils.normalizers.ScalarAdaptiveNormalizer)
    # the operative config records the bound values
    operative = gin.operative_config_str()
    assert "ScalarAdaptiveNormalizer.speed = 4.0" in operative
    assert "clipped_exp.clip_value_max = 1.0" in operative


def test_registered_objects_resolve_to_their_originals():
    registered = dict(external_configurables._REGISTERED)
    for selector, obj in registered.items():
        assert gin.config._REGISTRY[selector].wrapped is obj, selector
    expected = {
        "torch.optim.Adam": torch.optim.Adam,
        "torch.optim.SGD": torch.optim.SGD,
        "torch.optim.lr_scheduler.CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
        "torch.optim.lr_scheduler.ReduceLROnPlateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
        "torch.exp": torch.exp,
        "torch.nn.functional.softplus": torch.nn.functional.softplus,
        "torch.nn.init.orthogonal_": torch.nn.init.orthogonal_,
        "torch.nn.Linear": torch.nn.Linear,
        "torch.nn.LSTM": torch.nn.LSTM,
        "torch.distributions.Normal": torch.distributions.Normal,
        "torch.distributions.transforms.TanhTransform": torch.distributions.transforms.TanhTransform,
        "alf.utils.dist_utils.StableTanh": alf.utils.dist_utils.StableTanh,
        "alf.utils.dist_utils.calc_default_target_entropy": alf.utils.dist_utils.calc_default_target_entropy,
        "alf.utils.normalizers.EMNormalizer": alf.utils.normalizers.EMNormalizer,
        "alf.utils.math_ops.swish": alf.utils.math_ops.swish,
    }
    for selector, obj in expected.items():
        assert registered[selector] is obj, selector
    # registration does not touch the originals
    assert type(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)) is torch.optim.Adam
    assert external_configurables.__all__ == []


def test_importing_twice_is_harmless():
    before = list(external_configurables._REGISTERED)
    module = importlib.reload(external_configurables)
    assert module._REGISTERED == before
    gin.parse_config("torch.optim.SGD.lr = 0.25")
    assert (
        gin.get_configurable("torch.optim.SGD")([torch.nn.Parameter(torch.zeros(1))]).defaults["lr"]
        == 0.25
    )


def test_name_registered_elsewhere_first_is_kept():
    """A selector already in gin's registry (here: registered by this module,
    as it would be by another library) is kept, not re-registered."""

    class Other:
        @staticmethod
        def relu(x, scale=1.0):
            return x * scale

    count = len(external_configurables._REGISTERED)
    external_configurables._register("torch.nn.functional", Other, ["relu"], required=False)
    assert gin.config._REGISTRY["torch.nn.functional.relu"].wrapped is torch.nn.functional.relu
    del external_configurables._REGISTERED[count:]
    with pytest.raises(AttributeError, match="no_such_name"):
        external_configurables._register("torch", torch, ["no_such_name"], required=True)
