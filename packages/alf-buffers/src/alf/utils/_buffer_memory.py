"""In-memory storage of a buffer: zeroed tensors, large CPU ones in memory
advised for transparent huge pages.

Sampling reads rows at random across the whole storage. With 4 KiB pages a
storage of gigabytes misses the TLB on nearly every row (each miss a page
walk through page tables that no longer fit in the caches), which made
``get_batch(256)`` from 10M float32[64] items 1.7x slower than from 100k.
A storage of at least ``HUGE_PAGE_MIN_BYTES`` on the CPU is therefore a
private anonymous mapping advised with ``MADV_HUGEPAGE`` (where the platform
has it; the kernel may still decline): 2 MiB pages cover 2.5 GB with 1280
TLB entries. The mapping is also zero-filled lazily, so memory is taken as
the buffer fills rather than at construction.
"""

import math
import mmap
from typing import Sequence

import torch

__all__ = ["HUGE_PAGE_MIN_BYTES", "zeros_storage"]

HUGE_PAGE_MIN_BYTES = 8 << 20


def zeros_storage(shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``torch.zeros(shape, dtype=dtype, device=device)``, contiguous; on the
    CPU from ``HUGE_PAGE_MIN_BYTES`` on, backed by an anonymous mapping
    advised for huge pages (kept alive by the tensor)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if (
        device.type != "cpu"
        or nbytes < HUGE_PAGE_MIN_BYTES
        or not hasattr(mmap, "MADV_HUGEPAGE")
        or not hasattr(mmap, "MAP_PRIVATE")
    ):
        return torch.zeros(tuple(shape), dtype=dtype, device=device)
    try:
        # MAP_PRIVATE: Python's default for anonymous maps is MAP_SHARED,
        # which is shmem, where huge pages are usually disabled
        mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        mapping.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return torch.zeros(tuple(shape), dtype=dtype, device=device)
    # the tensor holds a reference to the mapping: it lives as long as the storage
    return torch.frombuffer(mapping, dtype=torch.uint8).view(dtype).view(tuple(shape))
