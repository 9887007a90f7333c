"""Readers of the standard data-set files behind :mod:`alf.utils.datagen`.

* MNIST: the IDX files of LeCun et al., plain or gzipped.
* CIFAR-10: the "python version" batches, pickles whose objects are limited to a
  dict of str/bytes keys, lists, ints, strings and one uint8 NumPy array. They are
  read with an unpickler that resolves only the few NumPy callables such an array
  needs, so a crafted file cannot run code.
* the folder search shared by every loader: the ``data_dir`` argument, else the
  ``ALF_DATA_DIR`` environment variable, else ALF's default folder, each also
  searched in the sub-folder layout torchvision/torchtext leave behind.

Every malformed or truncated file raises ``ValueError`` naming the file.
"""

import gzip
import io
import os
import pickle
import struct
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "DATA_DIR_ENV",
    "find_files",
    "read_cifar10_batch",
    "read_idx",
]

#: Environment variable naming the data folder when ``data_dir`` is not given.
DATA_DIR_ENV = "ALF_DATA_DIR"

PathLike = Union[str, "os.PathLike[str]"]


def _candidate_roots(data_dir: Optional[PathLike], default_dir: str) -> Tuple[Path, str]:
    """Return the data folder and a phrase telling where it came from."""
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a str or path, got {type(data_dir).__name__}")
        return Path(data_dir), "the data_dir argument"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env), f"${DATA_DIR_ENV}"
    return Path(default_dir), f"ALF's default folder (neither data_dir nor ${DATA_DIR_ENV} set)"


def find_files(
    data_dir: Optional[PathLike],
    default_dir: str,
    subfolders: Sequence[str],
    names: Sequence[Sequence[str]],
    dataset: str,
) -> List[Path]:
    """Locate one file per entry of ``names`` in a single folder.

    Args:
        data_dir: the folder given by the caller, or None for ``$ALF_DATA_DIR``,
            or ``default_dir`` when that is unset too.
        default_dir: ALF's folder for this data set (relative to the current
            directory).
        subfolders: sub-folders of the data folder searched after the folder
            itself (e.g. ``"MNIST/raw"``, where torchvision keeps the files).
        names: for each file wanted, its accepted names in order of preference
            (e.g. ``("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")``).
        dataset: the data set's name, for the error message.

    Returns:
        The paths, in the order of ``names``, all from the first folder that holds
        every one of them.

    Raises:
        FileNotFoundError: naming the files expected and every folder searched.
    """
    root, origin = _candidate_roots(data_dir, default_dir)
    folders = [root] + [root / sub for sub in subfolders]
    for folder in folders:
        found = []
        for alternatives in names:
            hit = next((folder / n for n in alternatives if (folder / n).is_file()), None)
            if hit is None:
                break
            found.append(hit)
        else:
            return found
    expected = ", ".join(" or ".join(alternatives) for alternatives in names)
    searched = ", ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"{dataset} files not found: expected {expected} in one folder; searched {searched} "
        f"(data folder from {origin}). Nothing is downloaded at run time: put the standard "
        f"{dataset} files there, or pass data_dir= / set ${DATA_DIR_ENV}."
    )


# ----------------------------------------------------------------------------- IDX

_IDX_TYPES: Dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (MNIST's format), gzipped when its name ends in ``.gz``.

    The header is two zero bytes, a type code (0x08 unsigned byte, ...), the
    number of dimensions ``n``, then ``n`` big-endian int32 sizes; the data follow
    in C order.

    Returns:
        An array of the stored shape and dtype (native byte order).

    Raises:
        ValueError: naming ``path`` if the header is malformed or the file is
            shorter or longer than its header says (a truncated download).
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes, no complete header)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex()}; expected 0000 then a "
            f"type code in {sorted(hex(c) for c in _IDX_TYPES)} and a dimension count >= 1)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file ({len(raw)} bytes, header needs {header})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "oversized"
        raise ValueError(
            f"{path}: {kind} IDX file: header says shape {tuple(shape)} of {dtype.name} "
            f"({expected} bytes), file has {len(raw)} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


# ----------------------------------------------------------------------- CIFAR-10


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` restricted to what protocol-2 pickles of bytes use."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


# The callables a pickled uint8 ndarray needs, taken from NumPy itself so that the
# names of every NumPy version (numpy.core / numpy._core) resolve to them.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    # Python 3 writes bytes in protocol-2 pickles as _codecs.encode(str, "latin1").
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler resolving only the NumPy array constructors (no other global)."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not allowed in a CIFAR-10 batch")


def _key(batch: Dict, name: str):
    for key in (name, name.encode("ascii")):
        if key in batch:
            return batch[key]
    raise KeyError(name)


def read_cifar10_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (``data_batch_1`` ... ``test_batch``).

    The file is a pickle of a dict with ``data``, a uint8 array [N, 3072] whose
    rows are the red, green and blue 32x32 planes, and ``labels``, N ints in
    [0, 10). Python 2 strings are decoded as latin-1 (as the files were written);
    only NumPy's array constructors may appear as globals.

    Returns:
        images: uint8 array [N, 32, 32, 3] (HWC).
        labels: int64 array [N].

    Raises:
        ValueError: naming ``path`` if the file is truncated, is not such a pickle
            or its contents have other shapes, types or labels.
    """
    raw = path.read_bytes()
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        struct.error,
        UnicodeDecodeError,
    ) as exc:
        detail = "truncated file" if isinstance(exc, EOFError) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({detail})") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: a CIFAR-10 batch is a pickled dict, got {type(batch).__name__}")
    try:
        data, labels = _key(batch, "data"), _key(batch, "labels")
    except KeyError as exc:
        raise ValueError(f"{path}: CIFAR-10 batch has no {exc.args[0]!r} entry") from None
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3 * 32 * 32
    ):
        desc = (
            f"{data.dtype} array {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise ValueError(f"{path}: CIFAR-10 'data' must be a uint8 array [N, 3072], got {desc}")
    if not isinstance(labels, (list, tuple, np.ndarray)) or len(labels) != data.shape[0]:
        raise ValueError(
            f"{path}: CIFAR-10 'labels' must be a list of {data.shape[0]} ints (one per image)"
        )
    try:
        label_array = np.asarray(labels)
    except (TypeError, ValueError) as exc:  # ragged content
        raise ValueError(f"{path}: CIFAR-10 'labels' must be ints ({exc})") from exc
    if label_array.size and (
        label_array.dtype.kind not in "iu" or label_array.min() < 0 or label_array.max() > 9
    ):
        raise ValueError(f"{path}: CIFAR-10 'labels' must be ints in [0, 10)")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, label_array.astype(np.int64)
