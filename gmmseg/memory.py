"""A batch worker's memory: glibc's allocator kept fast and handing memory back.

Two calls, made by each batch task in the process that runs it (a worker of
``--jobs``, a Dask worker, or the run's own process): ``tune_allocator``
before the image, ``trim_memory`` after it. Elsewhere than glibc both do
nothing.
"""

import ctypes
import ctypes.util
import functools
import os

__all__ = ["MMAP_THRESHOLD", "tune_allocator", "trim_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2), where
# its own dynamic threshold stops rising (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 1024 * 1024

# glibc's environment tunables; setting any of them turns off its dynamic mmap threshold.
_FIXING_TUNABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_",
                    "MALLOC_MMAP_MAX_")

_tuned = False


@functools.cache  # loaded once a process, not once an image
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_allocator():
    """Give glibc the mmap threshold it would have reached itself, once a process.

    Dask's nannies start their workers with ``MALLOC_TRIM_THRESHOLD_=65536``
    (to hand freed memory back). With any malloc tunable set, glibc stops
    raising its mmap threshold as large blocks are freed, so every array over
    128 KiB becomes a fresh ``mmap``, zeroed page by page: EM allocates such
    arrays every step and ran 1.4 to 1.6 times slower in nanny workers
    (docs/batch.md). The environment is read once, when the process starts, so
    this sets, with ``mallopt``, the mmap threshold to the ceiling of glibc's
    dynamic one and the trim threshold to twice that, as glibc does when it
    raises the former (six 3 MP photos in one process: 26.0 s with the
    nanny's variable, 14.4 and 13.0 s with the mmap threshold set, 13.1 and
    12.8 s with both, 11.2 to 13.2 s without the variable). The memory is
    still handed back: ``trim_memory`` after every image. Without such a
    tunable, glibc's own dynamic thresholds are left alone.

    Returns
    -------
    tuned : bool
        Whether the threshold was set (now or earlier in this process).
    """
    global _tuned
    if _tuned or not any(name in os.environ for name in _FIXING_TUNABLES):
        return _tuned
    libc = _libc()
    try:
        _tuned = bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                      and libc.mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))
    except AttributeError:  # not glibc
        _tuned = False
    return _tuned


def trim_memory():
    """Hand the memory an image freed back to the system (glibc's ``malloc_trim``).

    glibc keeps freed heap memory for reuse, and across hundreds of images a
    worker's resident size crept up with it (measured with ``--jobs 2``: 859 MB
    after 10 photos, 1090 after 25, 1173 after 50); trimming after each image
    keeps it flat. Dask's documentation gives the same call for its workers.
    """
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
    except AttributeError:
        pass
