"""Make various external gin-configurable objects.

Importing this module registers with gin-config, under their public module
path, the classes and functions that ALF configs construct or pass around, so
that a gin file can bind their parameters and refer to them::

    import alf.utils.external_configurables  # noqa: F401  (registers)

    gin.parse_config('''
        torch.optim.Adam.lr = 3e-4
        torch.nn.functional.leaky_relu.negative_slope = 0.1
        alf.utils.normalizers.ScalarAdaptiveNormalizer.speed = 8.0
        train.optimizer_ctor = @torch.optim.Adam
    ''')

What is registered:

* torch: every optimizer of ``torch.optim`` and learning-rate scheduler of
  ``torch.optim.lr_scheduler``; activation functions (``torch.exp``,
  ``torch.tanh``, ``torch.relu``, ..., ``torch.nn.functional.elu``,
  ``softplus``, ``leaky_relu``, ...); parameter initializers of
  ``torch.nn.init``; common ``torch.nn`` modules (activations, linear,
  convolution, pooling, normalization, recurrent, transformer layers, losses);
  common ``torch.distributions`` and ``torch.distributions.transforms``.
* ALF (the modules of alf-math and alf-dist that ALF marks configurable):
  ``alf.utils.math_ops`` activations and invertible transforms, the
  normalizers, averagers, the action quantizer, the distributions,
  transforms, entropy-target calculators and ``OUProcess`` of
  ``alf.utils.dist_utils``, the truncated distributions of
  ``alf.utils.distributions`` and the samplers of ``alf.utils.action_samplers``.

Registration never changes the registered objects (gin wraps them), and a
selector already in gin's registry is left alone, so importing the module
again (``importlib.reload``) or registering one of these names elsewhere first
is harmless. torch names missing from the installed torch are skipped.
"""

import inspect
from typing import Any, Iterable, List, Tuple

import gin
import gin.config as _gin_config
import torch
import torch.distributions
import torch.distributions.transforms
import torch.nn
import torch.nn.functional
import torch.nn.init
import torch.optim
import torch.optim.lr_scheduler

import alf.utils.action_quantizer
import alf.utils.action_samplers
import alf.utils.averager
import alf.utils.dist_utils
import alf.utils.distributions
import alf.utils.math_ops
import alf.utils.normalizers

__all__: List[str] = []

#: ``(selector, object)`` of everything this module registered or found
#: already registered, in registration order.
_REGISTERED: List[Tuple[str, Any]] = []


def _register(module_name: str, module: Any, names: Iterable[str], required: bool) -> None:
    """Register ``module.<name>`` as ``<module_name>.<name>`` for each name.

    A missing name raises ``AttributeError`` when ``required`` (a bug of this
    table) and is skipped otherwise (an older or newer torch). A selector
    already registered is kept as it is.
    """
    for name in names:
        obj = getattr(module, name, None)
        if obj is None:
            if required:
                raise AttributeError(f"external_configurables: {module_name}.{name} does not exist")
            continue
        selector = f"{module_name}.{name}"
        existing = _gin_config._REGISTRY.get(selector)
        if existing is None:
            gin.external_configurable(obj, name=name, module=module_name)
        _REGISTERED.append((selector, obj))


def _subclasses(module: Any, base: type, exclude: Tuple[type, ...] = ()) -> List[str]:
    """Public names of ``module`` bound to strict subclasses of ``base``."""
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and issubclass(value, base)
        and value is not base
        and value not in exclude
    )


# ---- torch --------------------------------------------------------------------------------
_register(
    "torch.optim", torch.optim, _subclasses(torch.optim, torch.optim.Optimizer), required=False
)

_SCHEDULER_BASES = tuple(
    getattr(torch.optim.lr_scheduler, n)
    for n in ("LRScheduler", "_LRScheduler")
    if hasattr(torch.optim.lr_scheduler, n)
)
_register(
    "torch.optim.lr_scheduler",
    torch.optim.lr_scheduler,
    sorted(
        set(_subclasses(torch.optim.lr_scheduler, _SCHEDULER_BASES[0], exclude=_SCHEDULER_BASES))
        | {"ReduceLROnPlateau"}
    ),
    required=False,
)

# Activation functions.
_register(
    "torch",
    torch,
    ["exp", "tanh", "sigmoid", "relu", "relu_", "selu", "celu", "softmax", "log_softmax"],
    required=False,
)
_register(
    "torch.nn.functional",
    torch.nn.functional,
    [
        "celu", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
        "leaky_relu", "leaky_relu_", "log_softmax", "logsigmoid", "mish", "relu", "relu6",
        "relu_", "selu", "sigmoid", "silu", "softmax", "softplus", "softshrink", "softsign",
        "tanh", "tanhshrink", "normalize",
    ],
    required=False,
)  # fmt: skip

# Parameter initializers.
_register(
    "torch.nn.init",
    torch.nn.init,
    [
        "calculate_gain", "constant_", "dirac_", "eye_", "kaiming_normal_", "kaiming_uniform_",
        "normal_", "ones_", "orthogonal_", "sparse_", "trunc_normal_", "uniform_",
        "xavier_normal_", "xavier_uniform_", "zeros_",
    ],
    required=False,
)  # fmt: skip

# Modules.
_register(
    "torch.nn",
    torch.nn,
    [
        # activations
        "CELU", "ELU", "GELU", "GLU", "Hardsigmoid", "Hardswish", "Hardtanh", "Identity",
        "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "ReLU", "ReLU6", "SELU",
        "SiLU", "Sigmoid", "Softmax", "Softplus", "Softsign", "Tanh",
        # layers and containers
        "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
        "ConvTranspose3d", "Dropout", "Dropout2d", "Embedding", "Flatten", "Linear",
        "ModuleList", "Sequential", "Unflatten", "Upsample",
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
        "AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d",
        # normalization
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "InstanceNorm1d",
        "InstanceNorm2d", "LayerNorm",
        # recurrent and attention
        "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell", "MultiheadAttention",
        "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
        "TransformerEncoderLayer",
        # losses
        "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss",
        "L1Loss", "MSELoss", "NLLLoss", "SmoothL1Loss",
    ],
    required=False,
)  # fmt: skip

# Distributions and transforms.
_register(
    "torch.distributions",
    torch.distributions,
    [
        "Bernoulli", "Beta", "Categorical", "Cauchy", "Dirichlet", "Gamma", "Gumbel",
        "Independent", "Laplace", "LogNormal", "MixtureSameFamily", "MultivariateNormal",
        "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough",
        "RelaxedOneHotCategorical", "StudentT", "TransformedDistribution", "Uniform",
    ],
    required=False,
)  # fmt: skip
_register(
    "torch.distributions.transforms",
    torch.distributions.transforms,
    [
        "AbsTransform", "AffineTransform", "ComposeTransform", "ExpTransform",
        "IndependentTransform", "PowerTransform", "SigmoidTransform", "SoftmaxTransform",
        "SoftplusTransform", "TanhTransform",
    ],
    required=False,
)  # fmt: skip

# ---- ALF ------------------------------------------------------------------------------------
_register(
    "alf.utils.math_ops",
    alf.utils.math_ops,
    [
        "clipped_exp", "identity", "softclip", "softclip_tf", "softlower", "softsign",
        "softupper", "square", "swish", "Log1pTransform", "Sqrt1pTransform",
        "SqrtLinearTransform",
    ],
    required=True,
)  # fmt: skip
_register(
    "alf.utils.normalizers",
    alf.utils.normalizers,
    [
        "AdaptiveNormalizer", "EMNormalizer", "ScalarAdaptiveNormalizer",
        "ScalarEMNormalizer", "ScalarWindowNormalizer", "WindowNormalizer",
    ],
    required=True,
)  # fmt: skip
_register(
    "alf.utils.averager",
    alf.utils.averager,
    [
        "AdaptiveAverager", "EMAverager", "ScalarAdaptiveAverager", "ScalarEMAverager",
        "ScalarWindowAverager", "WindowAverager",
    ],
    required=True,
)  # fmt: skip
_register(
    "alf.utils.action_quantizer", alf.utils.action_quantizer, ["ActionQuantizer"], required=True
)
_register(
    "alf.utils.dist_utils",
    alf.utils.dist_utils,
    [
        # distributions
        "AffineTransformedDistribution", "Beta", "DiagMultivariateBeta",
        "DiagMultivariateCauchy", "DiagMultivariateNormal", "OneHotCategoricalGumbelSoftmax",
        "OneHotCategoricalStraightThrough", "StableCauchy",
        # transforms
        "AbsTransform", "AffineTransform", "ExpTransform", "PowerTransform",
        "SigmoidTransform", "SoftmaxTransform", "Softclip", "SoftclipTF", "Softlower",
        "Softplus", "Softsign", "Softupper", "StableTanh",
        # entropy targets and exploration noise
        "calc_default_max_entropy", "calc_default_target_entropy",
        "calc_default_target_entropy_quantized", "OUProcess",
    ],
    required=True,
)  # fmt: skip
_register(
    "alf.utils.distributions",
    alf.utils.distributions,
    [
        "CauchyITS", "NormalITS", "T2ITS", "TruncatedCauchy", "TruncatedDistribution",
        "TruncatedNormal", "TruncatedT2",
    ],
    required=True,
)  # fmt: skip
_register(
    "alf.utils.action_samplers",
    alf.utils.action_samplers,
    ["CategoricalSeedSampler", "EpsilonGreedySampler", "MultinomialSampler"],
    required=True,
)
