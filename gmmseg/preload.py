"""A fit's libraries imported on a second thread while the first reads the image.

A fit's first k-means and E-step import scikit-learn and SciPy's stats: about
0.8 s of CPU on their own, most of what a 3 MP run takes above
``bench/floor.py``. What the command line does before them (reading the image,
checking it, counting its colours) is mostly C loops that release the GIL, so
on two cores the two overlap (docs/speed.md gives the figures).

``start`` begins the imports; ``wait`` joins them and must come before the
fit's first ``threadpool_limits``. That call walks the loaded libraries with
``dl_iterate_phdr`` and a Python callback: it holds the dynamic loader's lock
and waits for the GIL, while an import on the other thread holds the GIL and
waits for that lock to load an extension (a hang seen under the lowest
supported versions, docs/speed.md). Between the two the main thread imports
only the project's modules and what reading an image needs, none of which
imports these libraries, so the two threads' import locks cannot wait on each
other either.
"""

import importlib
import sys
import threading

__all__ = ["FIT_MODULES", "start", "wait"]

# What a fit imports on first use: multivariate_normal and k-means.
FIT_MODULES = ("scipy.stats", "sklearn.cluster")

_threads = []  # started and not yet joined (a process has one main thread to join them)


def start(modules=FIT_MODULES):
    """Import ``modules``, in this order, on a daemon thread; return at once.

    Nothing is started when all are imported already. A module that fails to
    import stops the thread quietly: the code that needs it raises when it
    imports it, with its own traceback.
    """
    missing = [name for name in modules if name not in sys.modules]
    if missing:
        thread = threading.Thread(target=_import_all, args=(missing,),
                                  name="gmmseg-imports", daemon=True)
        thread.start()
        _threads.append(thread)


def wait():
    """Join the imports ``start`` began (at once if there are none)."""
    while _threads:
        _threads.pop().join()


def _import_all(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - left for the real import to raise
            return
