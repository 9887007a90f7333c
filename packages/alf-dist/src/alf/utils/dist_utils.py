"""Distribution utilities: transforms, distributions, specs, sampling, entropy.

Transforms and distribution classes live in private modules
(``_dist_transforms``, ``_dist_classes``, ``_dist_spec``,
``_dist_entropy_targets``, ``_dist_noise``) and are re-exported here, which
is where the reference documents them. Functions in this module act on
*nests* (see ``alf.nest``) of ``torch.distributions.Distribution``.
"""

import operator
from typing import Any, Callable, Tuple

import torch
import torch.distributions as td
import torch.nn.functional as F

from alf import nest
from alf.utils._dist_classes import (
    AffineTransformedDistribution,
    Beta,
    DiagMultivariateBeta,
    DiagMultivariateCauchy,
    DiagMultivariateNormal,
    OneHotCategoricalGumbelSoftmax,
    OneHotCategoricalStraightThrough,
    StableCauchy,
    beta_mode,
)
from alf.utils._dist_entropy_targets import (
    calc_default_max_entropy,
    calc_default_target_entropy,
    calc_default_target_entropy_quantized,
    calc_uniform_log_prob,
)
from alf.utils._dist_noise import OUProcess
from alf.utils._dist_spec import (
    DistributionSpec,
    distributions_to_params,
    extract_distribution_parameters,
    extract_spec,
    params_to_distributions,
    to_distribution_param_spec,
)
from alf.utils._dist_transforms import (
    AbsTransform,
    AffineTransform,
    ExpTransform,
    PowerTransform,
    SigmoidTransform,
    Softclip,
    SoftclipTF,
    Softlower,
    SoftmaxTransform,
    Softplus,
    Softsign,
    Softupper,
    StableTanh,
    get_invertible,
)

# re-exported as ALF's dist_utils does (ALF's networks use
# ``dist_utils.TruncatedNormal`` as a default argument)
from alf.utils.distributions import (
    TruncatedCauchy,
    TruncatedDistribution,
    TruncatedNormal,
    TruncatedT2,
)

__all__ = [
    "AbsTransform",
    "AffineTransform",
    "AffineTransformedDistribution",
    "Beta",
    "DiagMultivariateBeta",
    "DiagMultivariateCauchy",
    "DiagMultivariateNormal",
    "DistributionSpec",
    "ExpTransform",
    "OUProcess",
    "OneHotCategoricalGumbelSoftmax",
    "OneHotCategoricalStraightThrough",
    "PowerTransform",
    "SigmoidTransform",
    "Softclip",
    "SoftclipTF",
    "Softlower",
    "SoftmaxTransform",
    "Softplus",
    "Softsign",
    "Softupper",
    "StableCauchy",
    "StableTanh",
    "TruncatedCauchy",
    "TruncatedDistribution",
    "TruncatedNormal",
    "TruncatedT2",
    "calc_default_max_entropy",
    "calc_default_target_entropy",
    "calc_default_target_entropy_quantized",
    "calc_uniform_log_prob",
    "compute_entropy",
    "compute_log_probability",
    "distributions_to_params",
    "entropy_with_fallback",
    "epsilon_greedy_sample",
    "estimated_entropy",
    "extract_distribution_parameters",
    "extract_spec",
    "get_base_dist",
    "get_invertible",
    "get_mode",
    "get_rmode",
    "params_to_distributions",
    "rsample_action_distribution",
    "sample_action_distribution",
    "to_distribution_param_spec",
]


def _distribution_leaves(nested_distributions: Any, name: str) -> list:
    leaves = nest.flatten(nested_distributions)
    for leaf in leaves:
        if not isinstance(leaf, td.Distribution):
            raise ValueError(f"{name} must hold Distributions; got {type(leaf).__name__}")
    return leaves


def compute_entropy(distributions: Any) -> torch.Tensor:
    """Computes total entropy of nested distribution.

    Args:
        distributions (nested Distribution): possibly batched distributions.
    Returns:
        Tensor: the sum of ``entropy()`` over the nest, ``batch_shape``.
    """
    return sum(d.entropy() for d in _distribution_leaves(distributions, "distributions"))


def compute_log_probability(distributions: Any, actions: Any) -> torch.Tensor:
    """Computes log probability of actions given distribution.

    Args:
        distributions (nested Distribution): possibly batched distributions.
        actions (nested Tensor): actions, with the structure of
            ``distributions``.
    Returns:
        Tensor: the log probability summed over the nest, ``batch_shape``.
    Raises:
        ValueError: ``actions`` does not have the structure of
            ``distributions``.
    """
    try:
        nest.assert_same_structure(distributions, actions)
    except (ValueError, TypeError) as error:
        raise ValueError(f"actions does not match distributions: {error}") from None
    dists = _distribution_leaves(distributions, "distributions")
    return sum(d.log_prob(a) for d, a in zip(dists, nest.flatten(actions)))


def estimated_entropy(
    dist: td.Distribution, num_samples: int = 1, check_numerics: bool = False
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Estimate entropy by sampling.

    ``-log p(x)`` with ``x ~ p`` is an unbiased estimator of the entropy,
    but for a sample that is not reparameterized its gradient is not an
    unbiased estimator of the entropy's gradient; ``-log(p(x))^2 / 2`` (with
    ``x`` detached) is, since ``E[grad log p] = 0``. For a reparameterized
    floating sample ``-log p(x)`` is used for both.

    Args:
        dist (Distribution): concerned distribution.
        num_samples (int): number of random samples used for estimating
            entropy (positive).
        check_numerics (bool): if True, raise on NaN / Inf values (debugging).
    Returns:
        tuple: ``(entropy, entropy_for_gradient)``, both ``batch_shape``.
    Raises:
        ValueError: ``num_samples < 1``.
        FloatingPointError: ``check_numerics`` and a NaN/Inf estimate.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int; got {num_samples!r}")
    sample_shape = (num_samples,)
    if dist.has_rsample:
        sample = dist.rsample(sample_shape)
    else:
        sample = dist.sample(sample_shape)
    if dist.has_rsample and sample.dtype.is_floating_point:
        entropy = -dist.log_prob(sample)
        entropy_for_gradient = entropy
    else:
        entropy = -dist.log_prob(sample.detach())
        entropy_for_gradient = -0.5 * entropy * entropy
    if check_numerics and not bool(torch.isfinite(entropy).all()):
        raise FloatingPointError(f"estimated entropy has NaN/Inf values: {entropy}")
    return entropy.mean(dim=0), entropy_for_gradient.mean(dim=0)


def entropy_with_fallback(distributions: Any, return_sum: bool = True):
    """Computes total entropy of nested distribution, sampling where
    ``entropy()`` is not implemented.

    Returns ``(entropy, entropy_for_gradient)``: where ``entropy()`` exists
    both are its value; otherwise ``estimated_entropy`` provides an
    unbiased value and a surrogate whose gradient is unbiased. Use
    ``entropy`` for its value and ``entropy_for_gradient`` for gradients::

        ent, ent_for_grad = entropy_with_fallback(dist)
        alf.summary.scalar("entropy", ent)
        ent_for_grad.backward()

    Args:
        distributions (nested Distribution): possibly batched distributions.
        return_sum (bool): return the total over the nest, or a nest (like
            ``distributions``) of per-distribution values.
    Returns:
        tuple: ``(entropy, entropy_for_gradient)``.
    """
    entropies, for_gradient = [], []
    for dist in _distribution_leaves(distributions, "distributions"):
        try:
            entropy = dist.entropy()
            gradient_entropy = entropy
        except NotImplementedError:
            entropy, gradient_entropy = estimated_entropy(dist)
        entropies.append(entropy)
        for_gradient.append(gradient_entropy)
    if return_sum:
        return sum(entropies), sum(for_gradient)
    return (
        nest.pack_sequence_as(distributions, entropies),
        nest.pack_sequence_as(distributions, for_gradient),
    )


def _check_all_rsample(nested_distributions: Any) -> None:
    for dist in _distribution_leaves(nested_distributions, "nested_distributions"):
        if not dist.has_rsample:
            raise ValueError(
                f"nested_distributions must all support rsample to enable "
                f"backpropagation; {type(dist).__name__} does not"
            )


def _sample_nest(nested_distributions: Any, draw: Callable, return_log_prob: bool):
    """``draw(d)`` for each distribution ``d`` of the (checked) nest, and the
    summed log probability of the draws if ``return_log_prob``."""
    actions = nest.map_structure(draw, nested_distributions)
    if return_log_prob:
        return actions, compute_log_probability(nested_distributions, actions)
    return actions


def rsample_action_distribution(nested_distributions: Any, return_log_prob: bool = False):
    """Sample actions from distributions with reparameterization-based sampling.

    Uses ``Distribution.rsample()`` so gradients flow to the parameters.
    Computing the log probability right after sampling (``return_log_prob``)
    uses the transforms' caches before later operations (more sampling,
    cloning the actions) can invalidate them, which matters for actions
    close to the bounds of a squashing transform.

    Args:
        nested_distributions (nested Distribution): action distributions.
        return_log_prob (bool): also return the log probability (summed over
            the nest) of the sampled actions.
    Returns:
        rsampled actions, or ``(actions, log_prob)`` if ``return_log_prob``.
    Raises:
        ValueError: a distribution does not support ``rsample``.
    """
    _check_all_rsample(nested_distributions)
    return _sample_nest(nested_distributions, operator.methodcaller("rsample"), return_log_prob)


def sample_action_distribution(nested_distributions: Any, return_log_prob: bool = False):
    """Sample actions from distributions with conventional sampling (no
    backpropagation).

    See ``rsample_action_distribution`` for why ``return_log_prob`` helps.

    Args:
        nested_distributions (nested Distribution): action distributions.
        return_log_prob (bool): also return the log probability (summed over
            the nest) of the sampled actions.
    Returns:
        sampled actions, or ``(actions, log_prob)`` if ``return_log_prob``.
    """
    _distribution_leaves(nested_distributions, "nested_distributions")
    return _sample_nest(nested_distributions, operator.methodcaller("sample"), return_log_prob)


def epsilon_greedy_sample(nested_distributions: Any, eps: float = 0.1) -> Any:
    """Generate greedy samples that maximize the probability, except with
    probability ``eps`` per batch entry (first batch dimension), where a
    sample is drawn instead.

    Args:
        nested_distributions (nested Distribution): distributions to sample
            from.
        eps (float): in ``[0, 1]``, the chance of sampling instead of taking
            the mode; this helps avoid dead loops in some deterministic
            environments like Breakout.
    Returns:
        (nested) Tensor: one action per distribution, ``batch_shape +
        event_shape``.
    Raises:
        ValueError: ``eps`` is not in ``[0, 1]``.
    """
    if not (isinstance(eps, (int, float)) and 0 <= eps <= 1):
        raise ValueError(f"eps must be in [0, 1]; got {eps!r}")
    if eps >= 1:
        return sample_action_distribution(nested_distributions)
    _distribution_leaves(nested_distributions, "nested_distributions")

    def _greedy(dist):
        greedy = get_mode(dist)
        if eps == 0:
            return greedy
        sample = dist.sample()
        explore = torch.rand(dist.batch_shape[:1], device=sample.device) < eps
        explore = explore.reshape(explore.shape + (1,) * (sample.dim() - explore.dim()))
        return torch.where(explore, sample, greedy.to(sample.dtype))

    return nest.map_structure(_greedy, nested_distributions)


def get_base_dist(dist: td.Distribution) -> td.Distribution:
    """Get the base distribution.

    Args:
        dist (Distribution): a ``td.Normal``, ``StableCauchy``/``td.Cauchy``,
            ``td.Beta``, ``TruncatedDistribution``, ``td.Categorical`` (returned
            as it is, as ALF), or a ``td.Independent`` /
            ``td.TransformedDistribution`` wrapping one.
    Returns:
        The innermost base distribution (``dist`` itself when not wrapped).
    Raises:
        NotImplementedError: the innermost distribution is of another type.
    """
    if isinstance(dist, (td.Independent, td.TransformedDistribution)):
        return get_base_dist(dist.base_dist)
    if isinstance(dist, (td.Normal, td.Cauchy, td.Beta, TruncatedDistribution, td.Categorical)):
        return dist
    raise NotImplementedError(f"get_base_dist does not support {type(dist).__name__}")


def _transformed_mode(dist: td.TransformedDistribution, base_mode: torch.Tensor) -> torch.Tensor:
    mode = base_mode
    for transform in dist.transforms:
        mode = transform(mode)
    return mode


def get_mode(dist: td.Distribution) -> torch.Tensor:
    """Get the mode of the distribution.

    For a transformed distribution the result is the transformed mode of the
    base distribution, which may not be its actual mode.

    Args:
        dist (Distribution): ``td.Categorical``, ``td.OneHotCategorical``
            (and subclasses), ``td.Normal``, ``td.Cauchy``, ``td.Beta``,
            ``TruncatedDistribution``, or ``td.Independent`` /
            ``td.TransformedDistribution`` of those.
    Returns:
        Tensor: ``batch_shape + event_shape`` (argmax index for Categorical,
        a one-hot float vector for OneHotCategorical).
    Raises:
        NotImplementedError: other distribution types.
    """
    if isinstance(dist, td.Categorical):
        return torch.argmax(dist.logits, -1)
    if isinstance(dist, td.OneHotCategorical):
        logits = dist.logits
        return F.one_hot(torch.argmax(logits, -1), logits.shape[-1]).to(logits.dtype)
    if isinstance(dist, td.Independent):
        return get_mode(dist.base_dist)
    if isinstance(dist, td.TransformedDistribution):
        return _transformed_mode(dist, get_mode(dist.base_dist))
    return _continuous_mode(dist, "get_mode")


def _continuous_mode(dist: td.Distribution, caller: str) -> torch.Tensor:
    if isinstance(dist, td.Normal):
        return dist.mean
    if isinstance(dist, td.Cauchy):
        return dist.loc
    if isinstance(dist, td.Beta):
        return beta_mode(dist.concentration1, dist.concentration0)
    if isinstance(dist, TruncatedDistribution):
        return dist.mode
    raise NotImplementedError(f"{caller} does not support {type(dist).__name__}")


def get_rmode(dist: td.Distribution) -> torch.Tensor:
    """Get the mode of the distribution, differentiable in its parameters.

    For a transformed distribution the result is the transformed mode of the
    base distribution, which may not be its actual mode.

    Args:
        dist (Distribution): ``td.Normal``, ``StableCauchy``/``td.Cauchy``,
            ``Beta``, ``TruncatedDistribution``,
            ``OneHotCategoricalStraightThrough`` /
            ``OneHotCategoricalGumbelSoftmax`` (straight-through one-hot), or
            ``td.Independent`` / ``td.TransformedDistribution`` of those.
    Returns:
        Tensor: ``batch_shape + event_shape``.
    Raises:
        NotImplementedError: other distribution types.
    """
    if isinstance(dist, (OneHotCategoricalStraightThrough, OneHotCategoricalGumbelSoftmax)):
        return dist.mode
    if isinstance(dist, td.Independent):
        return get_rmode(dist.base_dist)
    if isinstance(dist, td.TransformedDistribution):
        return _transformed_mode(dist, get_rmode(dist.base_dist))
    return _continuous_mode(dist, "get_rmode")


# Public names defined in this package's private helper modules report this module, so
# pickles, reprs and docs name the public import path, never a private file.
for _name in __all__:
    _obj = globals()[_name]
    if str(getattr(_obj, "__module__", None) or "").startswith("alf.utils._"):
        _obj.__module__ = "alf.utils.dist_utils"  # not __name__: "__main__" under python -m
del _name, _obj
