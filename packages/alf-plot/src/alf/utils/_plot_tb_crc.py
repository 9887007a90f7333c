"""Masked CRC-32C of TFRecord framing, computed for many records at once.

A TFRecord stores, for each record, ``masked_crc32c(length_bytes)`` and
``masked_crc32c(payload)``.  CRC-32C is the Castagnoli polynomial (reflected
form ``0x82F63B78``); the mask is ``((crc >> 15) | (crc << 17)) + 0xA282EAD8``
modulo ``2**32``.

Checking one record at a time in Python costs a loop iteration per byte.  Here
the table-driven recursion runs over *all* records in lock-step: records are
sorted by length and step ``j`` updates the CRC of every record longer than
``j`` with one NumPy gather, so the Python cost is one iteration per byte of
the longest (short) record rather than per byte of the file.  Records longer
than ``_VECTOR_MAX_LEN`` bytes (graphs, images) are few and go through the
per-byte loop.
"""

import numpy as np

__all__ = ["masked_crc32c", "masked_crc32c_many"]

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_VECTOR_MAX_LEN = 512


def _make_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()
_TABLE_NP = np.array(_TABLE, dtype=np.uint32)


def _mask(crc):
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data):
    """Masked CRC-32C of one byte string (per-byte loop).

    Args:
        data (bytes | memoryview): the bytes to checksum.

    Returns:
        int: the masked CRC in ``[0, 2**32)``.
    """
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return _mask(crc ^ 0xFFFFFFFF)


def masked_crc32c_many(buffer, offsets, lengths):
    """Masked CRC-32C of many slices of one buffer.

    Args:
        buffer (np.ndarray): uint8 array of shape ``[N]`` holding the data.
        offsets (np.ndarray): int64 array of shape ``[R]``, start of each slice.
        lengths (np.ndarray): int64 array of shape ``[R]``, length of each slice.

    Returns:
        np.ndarray: uint32 array of shape ``[R]``, the masked CRC of
        ``buffer[offsets[r]:offsets[r] + lengths[r]]``.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    result = np.empty(len(offsets), dtype=np.uint32)
    long_ = lengths > _VECTOR_MAX_LEN
    for r in np.flatnonzero(long_):
        start = int(offsets[r])
        result[r] = masked_crc32c(buffer[start : start + int(lengths[r])].tobytes())
    short = np.flatnonzero(~long_)
    if len(short) == 0:
        return result
    # Longest first, so that the records still running at step j are a prefix.
    order = short[np.argsort(-lengths[short], kind="stable")]
    starts = offsets[order]
    lens = lengths[order]
    crc = np.full(len(order), 0xFFFFFFFF, dtype=np.uint32)
    # active[j] = number of records with length > j.
    ascending = lens[::-1]
    max_len = int(lens[0])
    active = len(lens) - np.searchsorted(ascending, np.arange(max_len), side="right")
    for j in range(max_len):
        k = int(active[j])
        head = crc[:k]
        byte = buffer[starts[:k] + j]
        crc[:k] = _TABLE_NP[(head ^ byte) & 0xFF] ^ (head >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    crc64 = crc.astype(np.uint64)
    masked = (((crc64 >> 15) | (crc64 << 17)) + _MASK_DELTA) & 0xFFFFFFFF
    result[order] = masked.astype(np.uint32)
    return result
