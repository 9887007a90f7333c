"""Checkpoints of modules, optimizers and replay buffers, in ALF's on-disk layout.

A :class:`Checkpointer` saves the states of the objects it is given to
``ckpt_dir``, one step ``N`` at a time, as ALF does:

* ``ckpt-N``: ``{item: module state, ..., "global_step": N}``;
* ``ckpt-N-optimizer``: ``{item: {key: optimizer state}}`` for the
  ``torch.optim.Optimizer`` objects found in the items' module trees;
* ``ckpt-N-replay_buffer``: ``{item: {key: state}}`` for the keys under an
  attribute whose name starts with ``_replay_buffer``;
* ``ckpt-structure.json`` (and ``ckpt-structure-optimizer.json``,
  ``ckpt-structure-replay_buffer.json``): the keys of the latest save, tensors
  written as ``"dtype[shape]"``, to inspect a checkpoint without loading it.

Every file is a plain ``torch.save`` of dicts of tensors and numbers, so ALF
loads these folders and this module loads ALF's. Unlike ALF, a save is crash
safe: a process killed at any moment of :meth:`Checkpointer.save` leaves
every step either complete or absent (see ``_train_ckpt_files``).
"""

import json
import logging
import os
from typing import Dict, Optional, Sequence, Union

import torch
from torch import nn

from alf.utils import _train_ckpt_files as files
from alf.utils import _train_ckpt_state as states
from alf.utils._train_checks import check_int, check_path

__all__ = [
    "Checkpointer",
    "enable_checkpoint",
    "extract_sub_state_dict_from_checkpoint",
    "is_checkpoint_enabled",
]

_logger = logging.getLogger(__name__)
_RESERVED = ("global_step",)


def _check_step(value, name: str) -> int:
    """``value`` as an int >= 0 (see ``check_int``: NumPy integers and one-element
    integer tensors are taken too)."""
    return check_int(value, name, 0, expected="a non-negative int")


def _check_step_or_latest(value, name: str) -> Union[int, str]:
    """``"latest"`` or a step as :func:`_check_step` takes it."""
    if isinstance(value, str):
        if value != "latest":
            raise ValueError(f"{name} must be a non-negative int or 'latest'; got {value!r}")
        return value
    return check_int(value, name, 0, expected="a non-negative int or 'latest'")


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool; got {type(value).__name__} {value!r}")
    return value


def _default_map_location(map_location):
    if map_location is None and not torch.cuda.is_available():
        return torch.device("cpu")
    return map_location


def enable_checkpoint(module: nn.Module, flag: bool = True) -> None:
    """Enable/disable checkpointing of ``module``.

    A disabled module is left out of every checkpoint that contains it, with
    its sub-modules and the optimizers and replay buffers found in its tree:
    its keys are not saved, and :meth:`Checkpointer.load` neither restores nor
    expects them. Modules are enabled by default; the setting is held weakly,
    so it ends with the module.

    Args:
        module (torch.nn.Module): the module.
        flag (bool): True to enable checkpointing, False to disable it.
    Raises:
        TypeError: if ``module`` is not an ``nn.Module`` or ``flag`` not a bool.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    states.set_checkpoint_enabled(module, _check_bool(flag, "flag"))


def is_checkpoint_enabled(module: nn.Module) -> bool:
    """Whether ``module`` will be checkpointed.

    By default a module is checkpointed; ``enable_checkpoint(module, False)``
    turns that off.

    Args:
        module (torch.nn.Module): module in question.
    Returns:
        bool: True if the parameters of this module will be checkpointed.
    Raises:
        TypeError: if ``module`` is not an ``nn.Module``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    return states.checkpoint_enabled(module)


def extract_sub_state_dict_from_checkpoint(
    checkpoint_prefix: str, checkpoint_path, map_location=None, weights_only: bool = True
):
    """Extract a (sub-)state-dictionary from a checkpoint file.

    The checkpoint holds ``{item: {"a.b.weight": tensor, ...}, "global_step": N}``;
    ``checkpoint_prefix`` walks into it with dots, through the item names and
    the dotted keys alike: ``"alg._sub_alg1"`` returns
    ``{"weight": ..., ...}`` for the keys ``"_sub_alg1.weight", ...`` of item
    ``"alg"`` (ready for ``sub_alg1.load_state_dict``). ``""`` returns the whole
    dictionary.

    Args:
        checkpoint_prefix (str): the prefix of the sub-dictionary, ``"A.B.C"``,
            or ``""`` for everything.
        checkpoint_path (str): the path of a checkpoint file written by ALF or
            by :class:`Checkpointer`, e.g. ``".../train/algorithm/ckpt-100"``.
        map_location: where tensors go (``torch.load``'s argument); the default
            maps them to the CPU when CUDA is not available.
        weights_only (bool): ``torch.load``'s safe mode (tensors, numbers,
            containers only); pass False only for a trusted file that holds
            other objects.
    Returns:
        dict: the (sub-)state-dictionary; tensors keep their dtypes and shapes.
    Raises:
        TypeError: for a ``checkpoint_prefix`` that is not a str.
        KeyError: if ``checkpoint_prefix`` matches nothing; the message names
            it and the top-level keys of the checkpoint.
        RuntimeError: naming the file if it is truncated or corrupt.
    """
    if not isinstance(checkpoint_prefix, str):
        raise TypeError(f"checkpoint_prefix must be a str; got {type(checkpoint_prefix).__name__}")
    path = check_path(checkpoint_path, "checkpoint_path")
    _check_bool(weights_only, "weights_only")
    state = files.load_file(path, _default_map_location(map_location), weights_only)
    if checkpoint_prefix == "":
        return state
    sub = states.sub_state_dict(state, checkpoint_prefix)
    if sub is None:
        keys = list(state) if isinstance(state, dict) else type(state).__name__
        raise KeyError(
            f"checkpoint_prefix {checkpoint_prefix!r} matches nothing in {path}; "
            f"the checkpoint's top-level keys are {keys}"
        )
    return sub


class Checkpointer:
    """A checkpoint manager for saving and loading checkpoints.

    Saves the states of the items it is given to ``ckpt_dir`` in ALF's layout
    (see the module docstring) and writes json files describing the structure
    of the saved states. Optimizers found in an item's module tree (ALF's
    ``_optimizers`` lists, or any ``torch.optim.Optimizer`` attribute), replay
    buffers (``_replay_buffer*`` attributes, modules or any object with
    ``state_dict``/``load_state_dict``) and data transformers
    (``_data_transformer*``) are found automatically, so only the root of a
    tree needs to be passed::

        alg_root = MyAlg(params=[p1, p2], sub_algs=[a1, a2], optimizer=opt)
        ckpt_mngr = Checkpointer(ckpt_dir, alg=alg_root, durable=True, max_to_keep=3)
        ckpt_mngr.save(100)
        step = ckpt_mngr.load()  # 100

    A save is crash safe: a process killed at any moment of :meth:`save`
    leaves every step of ``ckpt_dir`` complete (all files of one save) or
    absent, and ``"latest"`` is the highest complete step.

    Args:
        ckpt_dir (str): the directory to save checkpoints; created if it does
            not exist.
        durable (bool): fsync every file and the directory before a step is
            committed (the default), so a step survives a power loss too.
            False still survives a killed process (temporary names and renames)
            and is faster on disks.
        max_to_keep (int|None): keep only the newest ``max_to_keep`` steps,
            deleting older ones after each save (never the step just saved nor
            the newest one); None keeps all.
        weights_only (bool): load with ``torch.load(weights_only=True)`` (the
            default); pass False for trusted checkpoints whose states hold
            arbitrary pickled objects.
        kwargs: the items to checkpoint, by name. Each needs ``state_dict`` and
            ``load_state_dict``. For a module, only the root needs to be passed:
            its children, optimizers and replay buffers are processed
            recursively. ``durable``, ``max_to_keep``, ``weights_only`` and
            ``global_step`` cannot be item names.
    Raises:
        TypeError: naming the keyword of an item without ``state_dict`` and
            ``load_state_dict``, or an option of the wrong type.
        ValueError: for ``max_to_keep < 1`` or an item named ``global_step``.
    """

    def __init__(
        self,
        ckpt_dir,
        *,
        durable: bool = True,
        max_to_keep: Optional[int] = None,
        weights_only: bool = True,
        **kwargs,
    ):
        ckpt_dir = check_path(ckpt_dir, "ckpt_dir")
        _check_bool(durable, "durable")
        _check_bool(weights_only, "weights_only")
        if max_to_keep is not None:
            max_to_keep = _check_step(max_to_keep, "max_to_keep")
            if max_to_keep < 1:
                raise ValueError(f"max_to_keep must be None or >= 1; got {max_to_keep}")
        for name, item in kwargs.items():
            if name in _RESERVED:
                raise ValueError(f"Checkpointer item name {name!r} is reserved by the file format")
            if not states.has_state_methods(states.unwrap(item)):
                raise TypeError(
                    f"Checkpointer item {name}= must have state_dict() and "
                    f"load_state_dict(); got {type(item).__name__}"
                )
        self._ckpt_dir = ckpt_dir
        self._modules: Dict[str, object] = dict(kwargs)
        self._durable = durable
        self._max_to_keep = max_to_keep
        self._weights_only = weights_only
        self._global_step = -1
        self._structures: Dict[str, Optional[str]] = {p: None for p in files.PARTS}
        os.makedirs(ckpt_dir, exist_ok=True)

    @property
    def ckpt_dir(self) -> str:
        """The checkpoint directory."""
        return self._ckpt_dir

    def checkpointed_steps(self):
        """The complete steps in the directory, ascending (list of int)."""
        return files.list_steps(self._ckpt_dir)

    def has_checkpoint(self, global_step: Union[int, str] = "latest") -> bool:
        """Whether there is a checkpoint in the checkpoint directory.

        Args:
            global_step (int|str): an int: whether step ``global_step``
                (``ckpt-{global_step}``) is there; ``"latest"``: whether any
                step is there.
        Returns:
            bool
        """
        step = _check_step_or_latest(global_step, "global_step")
        steps = files.list_steps(self._ckpt_dir)
        return bool(steps) if step == "latest" else step in steps

    def save(self, global_step: int) -> None:
        """Save states of all items to checkpoint step ``global_step``.

        Writes ``ckpt-{global_step}``, ``ckpt-{global_step}-optimizer`` and
        ``ckpt-{global_step}-replay_buffer`` under temporary names, then commits
        them so that the step appears whole (a step saved again is replaced
        whole); afterwards the structure files are updated and, with
        ``max_to_keep``, old steps are deleted. ``"latest"`` then means this
        step if it is the highest.

        Args:
            global_step (int): the number of training steps of the state; the
                suffix of the file names (an int, a NumPy integer or a one
                element integer tensor).
        Raises:
            TypeError/ValueError: for a ``global_step`` that is not an int >= 0,
                before anything is written.
        """
        step = _check_step(global_step, "global_step")
        items = [states.ItemState(name, obj) for name, obj in self._modules.items()]
        parts: Dict[str, Dict[str, object]] = {p: {} for p in files.PARTS}
        for item in items:
            for part, value in states.split(item).items():
                parts[part][item.name] = value
        parts[files.MODEL]["global_step"] = step
        os.makedirs(self._ckpt_dir, exist_ok=True)
        files.recover(self._ckpt_dir, self._durable)
        tmps = {}
        try:
            for part in files.PARTS:
                final = files.step_file(step, part)
                tmps[part] = files.write_tmp(self._ckpt_dir, final, parts[part], self._durable)
            files.commit_step(self._ckpt_dir, step, tmps, self._durable)
        except BaseException:
            for name in tmps.values():
                try:
                    os.unlink(os.path.join(self._ckpt_dir, name))
                except FileNotFoundError:
                    pass
            raise
        self._global_step = step
        self._write_structures(parts)
        if self._max_to_keep is not None:
            files.apply_retention(self._ckpt_dir, self._max_to_keep, step, self._durable)
        _logger.info("Checkpoint 'ckpt-%d' is saved successfully.", step)

    def _write_structures(self, parts) -> None:
        for part, name in files.STRUCTURE_FILES.items():
            text = json.dumps(states.describe(parts[part]), indent=2)
            if self._structures[part] is None:
                try:
                    with open(os.path.join(self._ckpt_dir, name), encoding="utf-8") as f:
                        self._structures[part] = f.read()
                except (OSError, UnicodeDecodeError):
                    pass
            if text != self._structures[part]:
                files.write_file_atomic(self._ckpt_dir, name, text.encode(), self._durable)
                self._structures[part] = text

    def load(
        self,
        global_step: Union[int, str] = "latest",
        ignored_parameter_prefixes: Sequence[str] = (),
        including_optimizer: bool = True,
        including_replay_buffer: bool = True,
        including_data_transformers: bool = True,
        strict: bool = True,
        map_location=None,
    ) -> int:
        """Load a checkpoint into the items.

        Every file of the step is read and checked before any item changes: a
        strict mismatch, a shape mismatch or a bad file leaves all items as
        they were. Keys are ``"<item>.<state key>"``, e.g. ``"alg._actor.weight"``.

        Args:
            global_step (int|str): the step to load; ``"latest"`` (the default)
                loads the highest complete step.
            ignored_parameter_prefixes (list[str]): checkpoint keys starting
                with one of these are neither loaded nor expected (those
                parameters keep their current values).
            including_optimizer (bool): whether to load the optimizer states.
            including_replay_buffer (bool): whether to load the replay buffer
                states.
            including_data_transformers (bool): whether to load the states of
                data transformers (keys with a ``_data_transformer*`` part).
            strict (bool): whether the loaded keys must match the items' keys
                exactly; if so, the error lists the missing and the unexpected
                keys. With False they are skipped silently.
            map_location: ``torch.load``'s ``map_location``; the default maps
                to the CPU when CUDA is unavailable (tensors saved on a GPU load
                on a CPU-only machine).
        Returns:
            int: the step number of the loaded checkpoint, or -1 if the
            requested checkpoint does not exist.
        Raises:
            RuntimeError: for missing/unexpected keys (strict), mismatched
                shapes or optimizer groups, or a truncated or corrupt file
                (the message names it).
            TypeError/ValueError: for bad arguments.
        """
        req = _check_step_or_latest(global_step, "global_step")
        if isinstance(ignored_parameter_prefixes, str) or not all(
            isinstance(p, str) for p in ignored_parameter_prefixes
        ):
            raise TypeError(
                "ignored_parameter_prefixes must be a list of str; got "
                f"{ignored_parameter_prefixes!r}"
            )
        sel = states.Selection(
            ignored_parameter_prefixes,
            _check_bool(including_optimizer, "including_optimizer"),
            _check_bool(including_replay_buffer, "including_replay_buffer"),
            _check_bool(including_data_transformers, "including_data_transformers"),
        )
        _check_bool(strict, "strict")
        map_location = _default_map_location(map_location)
        wanted = {files.MODEL, files.OPTIMIZER, files.REPLAY_BUFFER}
        if not including_optimizer:
            wanted.discard(files.OPTIMIZER)
        if not including_replay_buffer:
            wanted.discard(files.REPLAY_BUFFER)
        found = files.read_step(self._ckpt_dir, req, wanted, map_location, self._weights_only)
        if found is None:
            _logger.warning(
                "There is no checkpoint %s in directory %s.",
                "" if req == "latest" else f"ckpt-{req}",
                self._ckpt_dir,
            )
            return -1
        step, loaded, model_path = found
        merged = states.merge(loaded)
        items = {name: states.ItemState(name, obj) for name, obj in self._modules.items()}
        missing, unexpected, mismatched, plans = [], [], [], {}
        for name, item in items.items():
            plan, m, u, x = states.plan_item(item, merged.get(name), sel)
            plans[name] = plan
            missing += m
            unexpected += u
            mismatched += x
        for name, value in merged.items():
            if name not in items and name not in _RESERVED and not sel.excluded(name, value):
                unexpected.append(name)
        if mismatched or (strict and (missing or unexpected)):
            raise RuntimeError(
                f"Error(s) in loading checkpoint {model_path}: "
                + states.missing_report(
                    missing if strict else [], unexpected if strict else [], mismatched
                )
            )
        for name, item in items.items():
            states.apply_item(item, plans[name])
        stored = merged.get("global_step", step)
        try:
            step = int(stored)
        except (TypeError, ValueError):
            pass
        self._global_step = step
        _logger.info("Checkpoint 'ckpt-%d' is loaded successfully.", step)
        return step
