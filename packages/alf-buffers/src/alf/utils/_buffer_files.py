"""File-backed storage of a ``RingBuffer``/``DataBuffer``: memory-mapped files
in a folder, and a small header that commits the positions.

Folder layout (format version 1)::

    meta.json    what the folder holds: num_environments, max_length and, per
                 leaf of the spec, its nest path, dtype, shape and file name
                 (written once, when the folder is created: temporary file,
                 fsync, rename)
    leaf<i>.bin  the storage of leaf i, C order
                 [num_environments, max_length] + spec.shape, raw bytes
    header.bin   int64 words: magic, version, num_environments, 0, then two
                 commit slots of 2 + 2 * num_environments words each:
                 [sequence number, crc32, positions..., sizes...]

Crash safety. The buffer writes the items of a step into the mapped leaf files
first and only then commits the positions and sizes that make them visible,
into the older of the two header slots: the arrays, then their CRC, then the
sequence number (one aligned 8-byte store) last. A process killed at any
moment leaves the newer slot, or the older one when the newer is incomplete,
valid; reopening takes the valid slot with the highest sequence number, so it
finds every item whose write completed and no item that was half written. An
item about to be overwritten (a full ring) is dropped by a commit before its
slot is written. A kill of the process does not lose what it stored into the
mappings (the kernel owns those pages); after an operating-system crash or a
power loss, what was ``flush()``-ed survives (data first, then the header).
"""

import json
import os
import zlib
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from alf.tensor_specs import TensorSpec

__all__ = ["FileStore"]

_FORMAT = "alf-buffers file storage"
_VERSION = 1
_MAGIC = 0x616C6662756631  # "alfbuf1"
_META = "meta.json"
_HEADER = "header.bin"
_PREAMBLE_WORDS = 4


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (where directories can be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


def _create_file(path: str, nbytes: int) -> None:
    """A file of ``nbytes`` zero bytes (sparse where the filesystem can)."""
    with open(path, "wb") as f:
        f.truncate(nbytes)
        f.flush()
        os.fsync(f.fileno())


class FileStore:
    """The storage tensors and the committed positions of a buffer in
    ``folder`` (created when it holds no ``meta.json``, else opened and
    checked against the buffer's layout).

    Args:
        folder (str | os.PathLike): the storage folder.
        leaves (list[(str, TensorSpec)]): nest paths and specs of the leaves.
        num_environments (int): number of rings.
        max_length (int): slots per ring.
    Raises:
        ValueError: the folder holds a storage of another layout, or a
            corrupt header (the message names the folder and the mismatch).
        OSError: the folder cannot be created, read or mapped.
    """

    def __init__(
        self,
        folder: Any,
        leaves: Sequence[Tuple[str, TensorSpec]],
        num_environments: int,
        max_length: int,
    ):
        self.folder = os.path.abspath(os.fspath(folder))
        self.num_envs = num_environments
        self.max_length = max_length
        self.meta: Dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "num_environments": num_environments,
            "max_length": max_length,
            "leaves": [
                {
                    "path": path,
                    "dtype": _dtype_name(spec.dtype),
                    "shape": list(spec.shape),
                    "file": f"leaf{i}.bin",
                }
                for i, (path, spec) in enumerate(leaves)
            ],
        }
        self._specs = [spec for _, spec in leaves]
        self._slot_words = 2 + 2 * num_environments
        meta_path = os.path.join(self.folder, _META)
        if os.path.exists(meta_path):
            self._check_meta(meta_path)
            self.created = False
        else:
            self._create()
            self.created = True
        self._maps: List[np.memmap] = []
        self.tensors = [self._map_leaf(i, spec) for i, spec in enumerate(self._specs)]
        self._header = np.memmap(
            os.path.join(self.folder, _HEADER),
            dtype=np.int64,
            mode="r+",
            shape=(_PREAMBLE_WORDS + 2 * self._slot_words,),
        )
        self._slots = [
            self._header[_PREAMBLE_WORDS + k * self._slot_words :][: self._slot_words]
            for k in range(2)
        ]
        # the commit positions are read and checked now: a bad header fails
        # the construction, before the buffer is used
        self.committed()

    # ---- creation and checks ---------------------------------------------
    def _leaf_bytes(self, spec: TensorSpec) -> int:
        return self.num_envs * self.max_length * spec.numel * spec.dtype.itemsize

    def _create(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        for entry, spec in zip(self.meta["leaves"], self._specs):
            _create_file(os.path.join(self.folder, entry["file"]), self._leaf_bytes(spec))
        header = np.zeros(_PREAMBLE_WORDS + 2 * self._slot_words, dtype=np.int64)
        header[:3] = (_MAGIC, _VERSION, self.num_envs)
        zeros = np.zeros(self.num_envs, dtype=np.int64)
        for k in range(2):
            slot = header[_PREAMBLE_WORDS + k * self._slot_words :][: self._slot_words]
            self._fill_slot(slot, k, zeros, zeros)
        _write_atomically(os.path.join(self.folder, _HEADER), header.tobytes())
        # meta.json last: a folder without it is an unfinished creation
        _write_atomically(
            os.path.join(self.folder, _META), json.dumps(self.meta, indent=1).encode()
        )

    def _check_meta(self, meta_path: str) -> None:
        try:
            with open(meta_path, "rb") as f:
                found = json.loads(f.read().decode())
        except (OSError, ValueError) as error:
            raise ValueError(f"storage_dir {self.folder!r}: unreadable {_META}: {error}") from None
        if not isinstance(found, dict) or found.get("format") != _FORMAT:
            raise ValueError(
                f"storage_dir {self.folder!r} holds no alf-buffers storage ({_META} has "
                f"format {found.get('format') if isinstance(found, dict) else found!r})"
            )
        if found.get("version") != _VERSION:
            raise ValueError(
                f"storage_dir {self.folder!r} has storage format version "
                f"{found.get('version')}; this alf-buffers reads version {_VERSION}"
            )
        for key in ("num_environments", "max_length", "leaves"):
            if found.get(key) != self.meta[key]:
                raise ValueError(
                    f"storage_dir {self.folder!r} holds a buffer with {key}="
                    f"{found.get(key)!r}; this buffer has {key}={self.meta[key]!r}"
                )
        header = os.path.join(self.folder, _HEADER)
        header_bytes = 8 * (_PREAMBLE_WORDS + 2 * self._slot_words)
        if not os.path.exists(header) or os.path.getsize(header) != header_bytes:
            raise ValueError(
                f"storage_dir {self.folder!r}: {_HEADER} is missing or not {header_bytes} bytes"
            )
        for entry, spec in zip(self.meta["leaves"], self._specs):
            path = os.path.join(self.folder, entry["file"])
            size = os.path.getsize(path) if os.path.exists(path) else None
            if size != self._leaf_bytes(spec):
                raise ValueError(
                    f"storage_dir {self.folder!r}: {entry['file']} should hold "
                    f"{self._leaf_bytes(spec)} bytes; found {size}"
                )

    def _map_leaf(self, i: int, spec: TensorSpec) -> torch.Tensor:
        shape = (self.num_envs, self.max_length) + tuple(spec.shape)
        nbytes = self._leaf_bytes(spec)
        if nbytes == 0:  # nothing to store (and an empty file cannot be mapped)
            return torch.zeros(shape, dtype=spec.dtype)
        mapped = np.memmap(
            os.path.join(self.folder, self.meta["leaves"][i]["file"]),
            dtype=np.uint8,
            mode="r+",
            shape=(nbytes,),
        )
        self._maps.append(mapped)
        # bytes reinterpreted as the spec dtype (bfloat16 has no NumPy dtype)
        return torch.from_numpy(mapped).view(spec.dtype).view(shape)

    # ---- the commit protocol -----------------------------------------------
    @staticmethod
    def _crc(seq: int, pos: np.ndarray, size: np.ndarray) -> int:
        crc = zlib.crc32(np.int64(seq).tobytes())
        crc = zlib.crc32(pos.tobytes(), crc)
        return zlib.crc32(size.tobytes(), crc)

    def _fill_slot(self, slot: np.ndarray, seq: int, pos: np.ndarray, size: np.ndarray) -> None:
        n = self.num_envs
        slot[2 : 2 + n] = pos
        slot[2 + n :] = size
        slot[1] = self._crc(seq, slot[2 : 2 + n], slot[2 + n :])
        slot[0] = seq  # last: the slot is valid from this store on

    def _valid(self, slot: np.ndarray) -> bool:
        n = self.num_envs
        return int(slot[1]) == self._crc(int(slot[0]), slot[2 : 2 + n], slot[2 + n :])

    def commit(self, pos: np.ndarray, size: np.ndarray) -> None:
        """Make positions ``pos`` and sizes ``size`` (int64 ``[num_envs]``
        each) the committed state, in the older of the two slots (call after
        the data they make visible is written; callers serialise commits)."""
        first, second = self._slots
        newer = first if int(first[0]) > int(second[0]) else second
        other = second if newer is first else first
        # overwrite the slot that is not the newest valid one (a damaged
        # newest slot is overwritten itself, leaving the valid older one)
        target = other if self._valid(newer) else newer
        self._fill_slot(target, max(int(first[0]), int(second[0])) + 1, pos, size)

    def committed(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(positions, sizes)`` of the newest valid slot (copies).

        Raises:
            ValueError: no slot is valid, or the header is not ours, or its
                positions are inconsistent.
        """
        head = self._header
        if int(head[0]) != _MAGIC or int(head[1]) != _VERSION or int(head[2]) != self.num_envs:
            raise ValueError(f"storage_dir {self.folder!r}: {_HEADER} is not a valid header")
        valid = [s for s in self._slots if self._valid(s)]
        if not valid:
            raise ValueError(f"storage_dir {self.folder!r}: {_HEADER} has no valid commit")
        slot = max(valid, key=lambda s: int(s[0]))
        n = self.num_envs
        pos, size = np.array(slot[2 : 2 + n]), np.array(slot[2 + n :])
        if np.any(size < 0) or np.any(size > np.minimum(pos, self.max_length)):
            raise ValueError(
                f"storage_dir {self.folder!r}: committed sizes {size.tolist()} do not fit "
                f"positions {pos.tolist()} and max_length={self.max_length}"
            )
        return pos, size

    def flush(self) -> None:
        """Write the mapped pages to the disk: the data, then the header (so
        an operating-system crash after ``flush`` returns loses nothing
        committed before it)."""
        for mapped in self._maps:
            mapped.flush()
        self._header.flush()
