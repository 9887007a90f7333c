"""``DistributionSpec``: rebuild distributions from nests of parameters.

A distribution is described by a *builder* (a picklable callable) and the
dict of its tensor parameters; ``builder(**params)`` makes an equal
distribution. Wrappers nest the parameters of what they wrap, in ALF's
layout: a ``td.TransformedDistribution`` has ``{"params_": <base params>,
"transforms_params_": [<tensor params of each transform>]}`` (an affine
transform's tensor ``loc``/``scale``, ``{}`` for the others), a
``td.MixtureSameFamily`` ``{"mixture": <mixture params>, "components":
<component params>}``; ``td.Independent`` keeps its base's parameters. Nests of distributions and tensors convert to nests of
parameter dicts and tensors and back (``distributions_to_params`` /
``params_to_distributions``), e.g. to store them in a replay buffer.
"""

import functools
from typing import Any, Callable, Dict, Tuple

import torch
import torch.distributions as td

from alf import nest
from alf.tensor_specs import TensorSpec
from alf.utils._dist_classes import (
    AffineTransformedDistribution,
    Beta,
    DiagMultivariateBeta,
    DiagMultivariateCauchy,
    DiagMultivariateNormal,
    OneHotCategoricalGumbelSoftmax,
    OneHotCategoricalStraightThrough,
    StableCauchy,
)
from alf.utils._dist_transforms import transform_builder
from alf.utils.distributions import TruncatedDistribution

__all__ = [
    "DistributionSpec",
    "extract_spec",
    "extract_distribution_parameters",
    "to_distribution_param_spec",
    "distributions_to_params",
    "params_to_distributions",
]


def _categorical_params(dist: td.Categorical) -> Dict[str, torch.Tensor]:
    """``probs`` if ``dist`` was built from probabilities, else ``logits``."""
    if "probs" in dist.__dict__ and dist._param is dist.__dict__["probs"]:
        return {"probs": dist.probs}
    return {"logits": dist.logits}


def _beta_params(dist: td.Beta) -> Dict[str, torch.Tensor]:
    """The concentrations, each of shape ``batch_shape`` (``Beta`` keeps the
    tensors passed in, which may only broadcast to it; they are returned
    themselves where they already have that shape)."""
    params = {"concentration1": dist.concentration1, "concentration0": dist.concentration0}
    return {
        k: v if v.shape == dist.batch_shape else v.expand(dist.batch_shape)
        for k, v in params.items()
    }


def _build_independent(base_builder, reinterpreted_batch_ndims, /, **params):
    return td.Independent(base_builder(**params), reinterpreted_batch_ndims)


def _build_transformed(base_builder, transform_builders, /, params_, transforms_params_):
    """ALF's layout: ``params_`` of the base distribution, one dict of
    tensor parameters per transform in ``transforms_params_``."""
    if len(transforms_params_) != len(transform_builders):
        raise ValueError(
            f"transforms_params_ must hold {len(transform_builders)} dicts (one per "
            f"transform); got {len(transforms_params_)}"
        )
    transforms = [b(**p) for b, p in zip(transform_builders, transforms_params_)]
    return td.TransformedDistribution(base_builder(**params_), transforms)


def _build_affine_transform(cls, fixed, event_dim, cache_size, /, **params):
    return cls(**fixed, **params, event_dim=event_dim, cache_size=cache_size)


def _build_without_params(build, /):
    return build()


def _transform_builder_and_params(transform: td.Transform):
    """``(builder, params)``: ``builder(**params)`` is a fresh copy of
    ``transform``; ``params`` holds its tensor parameters (``loc`` and
    ``scale`` of an affine transform when they are tensors, nothing for the
    others)."""
    if isinstance(transform, td.AffineTransform):
        values = {"loc": transform.loc, "scale": transform.scale}
        params = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
        fixed = {k: v for k, v in values.items() if k not in params}
        builder = functools.partial(
            _build_affine_transform,
            type(transform),
            fixed,
            transform.event_dim,
            transform._cache_size,
        )
        return builder, params
    return functools.partial(_build_without_params, transform_builder(transform)), {}


def _build_mixture(mixture_builder, component_builder, /, mixture, components):
    return td.MixtureSameFamily(mixture_builder(**mixture), component_builder(**components))


def _build_affine(base_builder, affine_loc, affine_scale, /, **params):
    return AffineTransformedDistribution(base_builder(**params), affine_loc, affine_scale)


def _get_builder(dist: td.Distribution) -> Tuple[Callable[..., td.Distribution], Dict[str, Any]]:
    """``(builder, params)`` with ``builder(**params)`` equal to ``dist``."""
    cls = type(dist)
    d: Any = dist  # dispatched on its exact type below
    if cls in (
        td.Categorical,
        td.OneHotCategorical,
        td.OneHotCategoricalStraightThrough,
        OneHotCategoricalStraightThrough,
    ):
        inner = d if cls is td.Categorical else d._categorical
        return cls, _categorical_params(inner)
    if cls is OneHotCategoricalGumbelSoftmax:
        builder = functools.partial(cls, hard_sample=d.hard_sample, tau=d.tau)
        return builder, _categorical_params(d._categorical)
    if cls in (td.Normal, td.Cauchy, StableCauchy):
        return cls, {"loc": d.loc, "scale": d.scale}
    if cls is DiagMultivariateNormal:
        return cls, {"loc": d.base_dist.loc, "scale": d.base_dist.scale}
    if cls is DiagMultivariateCauchy:
        return cls, {"loc": d.loc, "scale": d.scale}
    if cls in (td.Beta, Beta):
        return cls, _beta_params(d)
    if cls is DiagMultivariateBeta:
        return cls, _beta_params(d.base_dist)
    if isinstance(dist, TruncatedDistribution):
        bounds: Dict[str, Any] = {"lower_bound": d.lower_bound, "upper_bound": d.upper_bound}
        if cls is TruncatedDistribution:
            bounds["its"] = d.its
        return functools.partial(cls, **bounds), {"loc": d.loc, "scale": d.scale}
    if cls is td.Independent:
        base_builder, params = _get_builder(d.base_dist)
        builder = functools.partial(_build_independent, base_builder, d.reinterpreted_batch_ndims)
        return builder, params
    if cls is AffineTransformedDistribution:
        base_builder, params = _get_builder(d.base_dist)
        return functools.partial(_build_affine, base_builder, d.loc, d.scale), params
    if cls is td.TransformedDistribution:
        base_builder, params = _get_builder(d.base_dist)
        parts = [_transform_builder_and_params(t) for t in d.transforms]
        builder = functools.partial(_build_transformed, base_builder, [b for b, _ in parts])
        return builder, {"params_": params, "transforms_params_": [p for _, p in parts]}
    if cls is td.MixtureSameFamily:
        mixture_builder, mixture = _get_builder(d.mixture_distribution)
        component_builder, components = _get_builder(d.component_distribution)
        builder = functools.partial(_build_mixture, mixture_builder, component_builder)
        return builder, {"mixture": mixture, "components": components}
    raise ValueError(f"dist: unsupported distribution type {cls.__module__}.{cls.__qualname__}")


class DistributionSpec:
    """Describes a distribution by a builder and the spec of its parameters.

    Args:
        builder (Callable): ``builder(**input_params)`` returns the
            ``Distribution`` with parameters ``input_params``.
        input_params_spec (nested TensorSpec): the spec of the parameters
            (usually a dict of ``TensorSpec`` without batch dims).
    """

    def __init__(self, builder: Callable[..., td.Distribution], input_params_spec: Any):
        if not callable(builder):
            raise TypeError(f"builder must be callable; got {builder!r}")
        self.builder = builder
        self.input_params_spec = input_params_spec

    def __repr__(self) -> str:
        return f"DistributionSpec(builder={self.builder!r}, input_params_spec={self.input_params_spec!r})"

    def build_distribution(self, input_params: Any) -> td.Distribution:
        """Build a Distribution using ``input_params``.

        Args:
            input_params (nested Tensor): the parameters for building the
                distribution; it must match ``input_params_spec``.
        Returns:
            Distribution
        Raises:
            ValueError: ``input_params`` does not have the structure of
                ``input_params_spec``.
        """
        try:
            nest.assert_same_structure(input_params, self.input_params_spec)
        except (ValueError, TypeError) as error:
            raise ValueError(f"input_params does not match input_params_spec: {error}") from None
        return self.builder(**input_params)

    @classmethod
    def from_distribution(cls, dist: td.Distribution, from_dim: int = 0) -> "DistributionSpec":
        """Create a ``DistributionSpec`` from a ``Distribution``.

        Args:
            dist (Distribution): the distribution from which the spec is
                extracted.
            from_dim (int): only use the dimensions from this one (the first
                ``from_dim`` dims of each parameter may be batch dims).
        Returns:
            DistributionSpec
        Raises:
            ValueError: ``dist`` is of an unsupported type.
        """
        builder, params = _get_builder(dist)
        return cls(builder, extract_spec(params, from_dim))


def extract_spec(nests: Any, from_dim: int = 1) -> Any:
    """Extract ``TensorSpec`` or ``DistributionSpec`` for each element of a nest.

    Args:
        nests (nested Tensor | Distribution): leaves of the same batch size.
        from_dim (int): ignore dimensions before this one.
    Returns:
        nest: the corresponding spec (without the ignored dims) per leaf.
    Raises:
        ValueError: a leaf is neither a Tensor nor a Distribution.
    """

    def _extract(path, leaf):
        if isinstance(leaf, torch.Tensor):
            return TensorSpec.from_tensor(leaf, from_dim)
        if isinstance(leaf, td.Distribution):
            return DistributionSpec.from_distribution(leaf, from_dim)
        raise ValueError(
            f"nests must hold Tensors or Distributions; got {type(leaf).__name__} at "
            f"{path or 'the root'!r}"
        )

    return nest.map_structure_with_path(_extract, nests)


def extract_distribution_parameters(dist: td.Distribution) -> Dict[str, Any]:
    """Extract the input parameters of a distribution.

    Args:
        dist (Distribution): distribution from which to extract parameters.
    Returns:
        dict: parameter name -> Tensor, or a nested dict for wrappers (see
        the module docstring: ``params_``/``transforms_params_`` of a
        transformed distribution, ``mixture``/``components`` of a
        ``MixtureSameFamily``).
    Raises:
        ValueError: ``dist`` is of an unsupported type.
    """
    return _get_builder(dist)[1]


def to_distribution_param_spec(nests: Any) -> Any:
    """Convert the ``DistributionSpec``s in ``nests`` to their parameter specs.

    Args:
        nests (nested DistributionSpec | TensorSpec): the specs.
    Returns:
        nested TensorSpec: each ``DistributionSpec`` replaced by its
        ``input_params_spec``.
    Raises:
        ValueError: a leaf is neither a ``DistributionSpec`` nor a ``TensorSpec``.
    """

    def _to_param_spec(path, spec):
        if isinstance(spec, DistributionSpec):
            return spec.input_params_spec
        if isinstance(spec, TensorSpec):
            return spec
        raise ValueError(
            f"nests must hold DistributionSpec or TensorSpec; got {type(spec).__name__} "
            f"at {path or 'the root'!r}"
        )

    return nest.map_structure_with_path(_to_param_spec, nests)


def distributions_to_params(nests: Any) -> Any:
    """Convert distributions to their parameters, keeping tensors unchanged.

    Args:
        nests (nested Distribution | Tensor): the values.
    Returns:
        nest: each Distribution replaced by the dict of its Tensor
        parameters (name -> Tensor).
    Raises:
        ValueError: a leaf is neither a Distribution nor a Tensor, or a
            distribution type is unsupported.
    """

    def _to_params(path, leaf):
        if isinstance(leaf, td.Distribution):
            return extract_distribution_parameters(leaf)
        if isinstance(leaf, torch.Tensor):
            return leaf
        raise ValueError(
            f"nests must hold Distributions or Tensors; got {type(leaf).__name__} at "
            f"{path or 'the root'!r}"
        )

    return nest.map_structure_with_path(_to_params, nests)


def params_to_distributions(nests: Any, nest_spec: Any) -> Any:
    """Convert distribution parameters to Distributions, keep tensors unchanged.

    Args:
        nests (nested Tensor | dict): typically from ``distributions_to_params``.
        nest_spec (nested DistributionSpec | TensorSpec): for each leaf, how
            to convert the corresponding part of ``nests``.
    Returns:
        nested Distribution | Tensor
    Raises:
        ValueError: ``nests`` does not match the structure of ``nest_spec``
            (down to the leaves of ``nest_spec``), or ``nest_spec`` holds
            something other than ``DistributionSpec``/``TensorSpec``.
    """
    try:
        parts = nest.flatten_up_to(nest_spec, nests)
    except (ValueError, TypeError) as error:
        raise ValueError(f"nests does not match the structure of nest_spec: {error}") from None
    paths = [p for p, _ in nest.flatten_with_path(nest_spec)]
    converted = []
    for path, spec, part in zip(paths, nest.flatten(nest_spec), parts):
        if isinstance(spec, DistributionSpec):
            converted.append(spec.build_distribution(part))
        elif isinstance(spec, TensorSpec):
            converted.append(part)
        else:
            raise ValueError(
                f"nest_spec must hold DistributionSpec or TensorSpec; got "
                f"{type(spec).__name__} at {path or 'the root'!r}"
            )
    return nest.pack_sequence_as(nest_spec, converted)
