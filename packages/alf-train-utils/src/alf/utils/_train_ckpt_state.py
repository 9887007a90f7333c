"""States of checkpointed objects: collecting, splitting into files, filtering, applying.

Private helper of :mod:`alf.utils.checkpoint_utils`.

Each item given to a ``Checkpointer`` contributes one top-level entry of the
checkpoint, named by its keyword:

* an ``nn.Module``: its ``state_dict()`` (flat ``"a.b.weight"`` keys) without
  the keys of modules disabled by ``enable_checkpoint(m, False)``, plus one
  entry per object found in its module tree that ``state_dict()`` misses:
  ``torch.optim.Optimizer`` attributes (``<path>.<attr>``, or
  ``<path>.<attr>.<i>`` for a list such as ALF's ``_optimizers``), and
  non-module replay buffers and data transformers (attributes whose names start
  with ``_replay_buffer`` / ``_data_transformer`` and that have
  ``state_dict``/``load_state_dict``: duck-typed, no buffer package needed);
* any other object: its ``state_dict()`` as a whole.

A checkpoint *key* is ``"<item>.<key in the item's state>"``; ignored prefixes,
the strict check and the including_* switches all work on these keys.
"""

import weakref
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Set

import torch
from torch import nn

from alf.utils._train_ckpt_files import MODEL, OPTIMIZER, REPLAY_BUFFER

__all__ = []

_DISABLED: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()
_REPLAY_BUFFER_ATTR = "_replay_buffer"
_DATA_TRANSFORMER_ATTR = "_data_transformer"
_TOP_LEVEL_REPLAY_BUFFER_NAMES = ("replay_buffer",)
# torch keeps a module's version metadata as this attribute of its state dict.
_METADATA_ATTR = "_metadata"


def get_metadata(state: Any) -> Any:
    """The version metadata torch attaches to a module's state dict (None if none)."""
    return getattr(state, _METADATA_ATTR, None)


def attach_metadata(state: Dict, metadata: Any) -> None:
    """Attach ``metadata`` to ``state`` as ``Module.state_dict()`` does."""
    setattr(state, _METADATA_ATTR, metadata)


def set_checkpoint_enabled(module: nn.Module, flag: bool) -> None:
    if flag:
        _DISABLED.discard(module)
    else:
        _DISABLED.add(module)


def checkpoint_enabled(module: nn.Module) -> bool:
    return module not in _DISABLED


def has_state_methods(obj) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def unwrap(obj):
    """The module inside ``DataParallel``/``DistributedDataParallel``."""
    parallel = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(obj, parallel):
        obj = obj.module
    return obj


def is_optimizer_state(value) -> bool:
    """Whether ``value`` looks like ``Optimizer.state_dict()`` (ALF's test)."""
    return isinstance(value, Mapping) and "param_groups" in value and "state" in value


def _components(full_key: str) -> List[str]:
    return full_key.split(".")


def is_replay_buffer_key(full_key: str) -> bool:
    parts = _components(full_key)
    return parts[0] in _TOP_LEVEL_REPLAY_BUFFER_NAMES or any(
        p.startswith(_REPLAY_BUFFER_ATTR) for p in parts
    )


def is_data_transformer_key(full_key: str) -> bool:
    return any(p.startswith(_DATA_TRANSFORMER_ATTR) for p in _components(full_key))


class ItemState:
    """The current state of one item and how to give a state back to it.

    Attributes:
        name: the item's keyword.
        obj: the item (unwrapped from data-parallel wrappers).
        whole: True for a non-module item (its state is one leaf).
        entries: module items: the flat state, ``key -> value``; whole items:
            the state dict.
        extras: module items: ``key -> object`` for the entries that are not
            part of ``obj.state_dict()`` (optimizers, duck-typed buffers).
        skipped: prefixes (``"path."``) of disabled sub-modules.
        metadata: ``state_dict()._metadata`` of a module item (or None).
    """

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.obj = unwrap(obj)
        self.whole = not isinstance(self.obj, nn.Module)
        # duck-typed objects with state_dict()/load_state_dict()
        self.extras: Dict[str, Any] = {}
        self.skipped: List[str] = []
        self.metadata = None
        if self.whole:
            self.entries = self.obj.state_dict()
            return
        seen: Set[int] = set()
        self._walk(self.obj, "", seen)
        state = self.obj.state_dict()
        self.metadata = get_metadata(state)
        entries = OrderedDict()
        for k, v in state.items():
            if not any(k.startswith(p) for p in self.skipped):
                entries[k] = v
        for key, extra in self.extras.items():
            entries[key] = extra.state_dict()
        self.entries = entries

    def _walk(self, module: nn.Module, prefix: str, seen: Set[int]) -> None:
        if not checkpoint_enabled(module):
            self.skipped.append(prefix)
            return
        for attr, value in vars(module).items():
            if attr in ("_parameters", "_buffers", "_modules"):
                continue
            if isinstance(value, torch.optim.Optimizer):
                self._add_extra(prefix + attr, value, seen)
            elif (
                isinstance(value, (list, tuple))
                and value
                and all(isinstance(o, torch.optim.Optimizer) for o in value)
            ):
                for i, o in enumerate(value):
                    self._add_extra(f"{prefix}{attr}.{i}", o, seen)
            elif (
                attr.startswith((_REPLAY_BUFFER_ATTR, _DATA_TRANSFORMER_ATTR))
                and not isinstance(value, nn.Module)
                and has_state_methods(value)
            ):
                self._add_extra(prefix + attr, value, seen)
        for child_name, child in module._modules.items():
            if child is not None:
                self._walk(child, f"{prefix}{child_name}.", seen)

    def _add_extra(self, key: str, obj: Any, seen: Set[int]) -> None:
        if id(obj) not in seen:
            seen.add(id(obj))
            self.extras[key] = obj

    def is_skipped(self, key: str) -> bool:
        return any(key.startswith(p) for p in self.skipped)


def split(item: ItemState) -> Dict[str, Dict]:
    """The item's state split into the parts ``model``/``optimizer``/``replay_buffer``.

    Returns:
        ``part -> dict`` (each possibly empty); the model part keeps the
        module's ``_metadata`` so version-dependent loaders still see it.
    """
    parts: Dict[str, Dict] = {
        MODEL: OrderedDict(),
        OPTIMIZER: OrderedDict(),
        REPLAY_BUFFER: OrderedDict(),
    }
    state = item.entries
    if item.whole and (isinstance(item.obj, torch.optim.Optimizer) or is_optimizer_state(state)):
        parts[OPTIMIZER] = state
        return parts
    if item.whole and item.name in _TOP_LEVEL_REPLAY_BUFFER_NAMES:
        parts[REPLAY_BUFFER] = state
        return parts
    if not isinstance(state, Mapping):
        raise TypeError(
            f"Checkpointer item {item.name!r}: state_dict() must return a mapping; "
            f"got {type(state).__name__}"
        )
    for k, v in state.items():
        full = f"{item.name}.{k}"
        if is_optimizer_state(v):
            parts[OPTIMIZER][k] = v
        elif is_replay_buffer_key(full):
            parts[REPLAY_BUFFER][k] = v
        else:
            parts[MODEL][k] = v
    if item.metadata is not None:
        attach_metadata(parts[MODEL], item.metadata)
    return parts


def merge(files: Mapping[str, Mapping]) -> Dict[str, Mapping]:
    """Merge the loaded parts (``part -> {item: state}``) into ``{item: state}``.

    ``global_step`` and other non-mapping top-level values of the model file
    are kept as they are.
    """
    merged: Dict[str, Mapping] = OrderedDict()
    for part in (MODEL, OPTIMIZER, REPLAY_BUFFER):
        for name, state in files.get(part, {}).items():
            if isinstance(state, Mapping) and isinstance(merged.get(name), Mapping):
                combined = OrderedDict(merged[name])
                combined.update(state)
                meta = get_metadata(merged[name])
                if meta is not None:
                    attach_metadata(combined, meta)
                merged[name] = combined
            else:
                merged[name] = state
    return merged


def describe(value):
    """The json-able structure of a state: keys kept, tensors as ``"dtype[shape]"``."""
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        return f"{dtype}[{', '.join(str(s) for s in value.shape)}]"
    if value is None or isinstance(value, (bool, int, float, str)):
        return type(value).__name__
    return type(value).__name__


class Selection:
    """Which checkpoint keys ``load()`` takes (prefixes and including_* switches)."""

    def __init__(self, ignored_prefixes, optimizer, replay_buffer, data_transformers):
        self.ignored = tuple(ignored_prefixes)
        self.optimizer = optimizer
        self.replay_buffer = replay_buffer
        self.data_transformers = data_transformers

    def excluded(self, full_key: str, value, is_optimizer: bool = False) -> bool:
        """Whether the leaf ``full_key`` (holding ``value``) is left alone."""
        if any(full_key.startswith(p) for p in self.ignored):
            return True
        if not self.optimizer and (is_optimizer or is_optimizer_state(value)):
            return True
        if not self.replay_buffer and is_replay_buffer_key(full_key):
            return True
        if not self.data_transformers and is_data_transformer_key(full_key):
            return True
        return False


def plan_item(item: ItemState, ckpt_state, sel: Selection):
    """Compare an item's current state with its checkpointed one.

    Args:
        item: the item's current state.
        ckpt_state: the item's merged entry in the checkpoint (None if absent).
        sel: the selection of keys to load.
    Returns:
        ``(to_load, missing, unexpected, mismatched)``: ``to_load`` maps keys of
        the item's state to checkpointed values (the whole state for a whole
        item, or None if nothing is loaded), the others are lists of full keys
        (``mismatched`` as readable strings).
    """
    missing: List[str] = []
    unexpected: List[str] = []
    mismatched: List[str] = []
    if item.whole:
        is_opt = isinstance(item.obj, torch.optim.Optimizer)
        if sel.excluded(item.name, item.entries, is_opt):
            return None, missing, unexpected, mismatched
        if ckpt_state is None or (
            isinstance(ckpt_state, Mapping) and not ckpt_state and item.entries
        ):
            missing.append(item.name)
            return None, missing, unexpected, mismatched
        if isinstance(ckpt_state, Mapping) and not is_opt:
            ckpt_state = OrderedDict(
                (k, v) for k, v in ckpt_state.items() if not sel.excluded(f"{item.name}.{k}", v)
            )
        if is_opt:
            problem = optimizer_mismatch(item.entries, ckpt_state)
            if problem:
                mismatched.append(f"{item.name}: {problem}")
                return None, missing, unexpected, mismatched
        return ckpt_state, missing, unexpected, mismatched
    ckpt_state = ckpt_state if isinstance(ckpt_state, Mapping) else {}
    to_load = OrderedDict()
    bad_shape = set()
    for k, v in ckpt_state.items():
        full = f"{item.name}.{k}"
        if item.is_skipped(k) or sel.excluded(full, v):
            continue
        if k not in item.entries:
            unexpected.append(full)
            continue
        cur = item.entries[k]
        if isinstance(cur, torch.Tensor) and isinstance(v, torch.Tensor) and cur.shape != v.shape:
            bad_shape.add(k)
            mismatched.append(
                f"{full}: checkpoint shape {tuple(v.shape)}, current shape {tuple(cur.shape)}"
            )
            continue
        if is_optimizer_state(cur):
            problem = optimizer_mismatch(cur, v)
            if problem:
                bad_shape.add(k)
                mismatched.append(f"{full}: {problem}")
                continue
        to_load[k] = v
    for k, v in item.entries.items():
        if k in to_load or k in bad_shape:
            continue
        full = f"{item.name}.{k}"
        if not sel.excluded(full, v, _is_opt(item, k)):
            missing.append(full)
    return to_load, missing, unexpected, mismatched


def optimizer_mismatch(current, saved) -> str:
    """Why ``Optimizer.load_state_dict(saved)`` would fail for an optimizer
    whose state is ``current`` ("" if it would not): torch checks the numbers
    of parameter groups and of parameters per group, after changing nothing."""
    if not is_optimizer_state(saved):
        return "the checkpoint does not hold an optimizer state"
    cur, new = current["param_groups"], saved["param_groups"]
    if len(cur) != len(new):
        return f"checkpoint has {len(new)} parameter groups, the optimizer {len(cur)}"
    sizes = [len(g["params"]) for g in cur], [len(g.get("params", ())) for g in new]
    if sizes[0] != sizes[1]:
        return f"checkpoint groups have {sizes[1]} parameters, the optimizer's {sizes[0]}"
    return ""


def _is_opt(item: ItemState, key: str) -> bool:
    return isinstance(item.extras.get(key), torch.optim.Optimizer)


def apply_item(item: ItemState, to_load) -> None:
    """Give the planned state ``to_load`` to the item (see :func:`plan_item`)."""
    if to_load is None:
        return
    if item.whole:
        item.obj.load_state_dict(to_load)
        return
    own = OrderedDict((k, v) for k, v in to_load.items() if k not in item.extras)
    if item.metadata is not None or hasattr(to_load, _METADATA_ATTR):
        attach_metadata(own, getattr(to_load, _METADATA_ATTR, item.metadata))
    if own:
        item.obj.load_state_dict(own, strict=False)
    for k, v in to_load.items():
        if k in item.extras:
            item.extras[k].load_state_dict(v)


def sub_state_dict(state, prefix: str):
    """The entries of ``state`` under the dotted ``prefix`` (None if none).

    The path may go through nested mappings (``"alg"`` then ``"_sub"``) and
    through flat dotted keys (``"_sub.weight"``), in any mix.
    """
    if not isinstance(state, Mapping):
        return None
    found = False
    result = OrderedDict()
    if prefix in state and isinstance(state[prefix], Mapping):
        result.update(state[prefix])
        found = True
    dotted = prefix + "."
    for k, v in state.items():
        if isinstance(k, str) and k.startswith(dotted):
            result[k[len(dotted) :]] = v
            found = True
        elif isinstance(k, str) and isinstance(v, Mapping) and prefix.startswith(k + "."):
            sub = sub_state_dict(v, prefix[len(k) + 1 :])
            if sub is not None:
                result.update(sub)
                found = True
    return result if found else None


def missing_report(missing: List[str], unexpected: List[str], mismatched: List[str]) -> str:
    lines = []
    if missing:
        lines.append(f"missing keys: {missing}")
    if unexpected:
        lines.append(f"unexpected keys: {unexpected}")
    if mismatched:
        lines.append(f"shape mismatches: {mismatched}")
    return "; ".join(lines)
