"""How the process gives the memory of a big message back: glibc's malloc, tuned once.

glibc serves a big allocation with mmap (returned to the system when freed) only above a
threshold that it raises, up to 32 MiB, each time such a block is freed. After the first
big message, the buffers of the next ones (its bytes, the parser's text, the compressed
copy) come from the heap instead, and the heap stays in RSS: eight messages of 24 MB
peaked at 296 MB against 175 MB with a fixed threshold (bench/bigfolder.py). Setting the
threshold once turns that adjustment off. Nothing else changes: small allocations, i.e.
all of ordinary mail's, never reach it.
"""

from __future__ import annotations

import ctypes
import sys

MMAP_THRESHOLD = 1 << 20  # bytes: allocations this big or bigger are mmapped and returned
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_big_buffers() -> None:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD; does nothing on other C libraries."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # musl: a no-op that returns 0
