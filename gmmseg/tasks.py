"""Tasks on an executor: this process, worker processes or a Dask cluster, with progress.

``make_executor`` gives one of three ``concurrent.futures`` executors: the
run's own process (``jobs=1``), a pool of worker processes that import the
libraries once each and is renewed when a worker dies (``jobs=N``), or a Dask
cluster's (``dask.distributed.Client(address).get_executor()``);
``run_tasks`` drives any of them, at most a given number of tasks in flight,
with a tqdm bar on a terminal and a line per task in a log. The batch
(``gmmseg.batch``) is its user.
"""

import collections
import concurrent.futures as cf
import os
import sys
import time

from tqdm import tqdm

__all__ = ["DaskExecutor", "InProcess", "Pool", "Progress", "first_line", "make_executor",
           "run_tasks", "worker_start"]


def run_tasks(executor, slots, paths, results, task, failed, error, progress=True,
              what="images"):
    """Run one task per path, at most ``slots`` in flight, with a progress report.

    Parameters
    ----------
    executor : an executor of ``make_executor``
    slots : int
        Tasks in flight at most.
    paths : list of str
    results : dict
        Each path's result goes into ``results[path]``.
    task : callable
        ``task(path)`` gives ``(function, *arguments)``.
    failed : callable
        ``failed(path, why)``: the result of a task that died.
    error : callable
        ``error(result)``: the one line to report of a failed result, or "".
    progress : bool, default=True
    what : str
        What is counted, for the report.

    A task whose worker died (a ``BrokenExecutor``: killed by a signal, the
    OOM killer) runs once more on a renewed pool, so that a dead worker costs
    at most its own image; one that kills its worker again is ``failed``.
    """
    report = Progress(len(paths), what, progress)
    pending, retried = {}, set()

    def submit(path):
        function, *arguments = task(path)
        try:
            future = executor.submit(function, *arguments)
        except cf.BrokenExecutor as exc:  # the pool broke and cannot be renewed
            future = cf.Future()
            future.set_exception(exc)
        pending[future] = path

    try:
        queue = collections.deque(paths)
        while queue or pending:
            while queue and len(pending) < slots:
                submit(queue.popleft())
            for path, why in _collect(pending, results, report, failed, error):
                if path in retried or not executor.renew():
                    results[path] = failed(path, why)
                    report.done(path, error(results[path]))
                else:
                    retried.add(path)
                    queue.appendleft(path)
    finally:
        report.close()


class Progress:
    """A tqdm bar with an ETA on a terminal; elsewhere (a log file) a line per finished image."""

    def __init__(self, total, what, progress):
        self.total, self.what, self.count = total, what, 0
        self.start = time.perf_counter()
        self.lines = progress and not sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=what, unit="image",
                        disable=None if progress and not self.lines else True)

    def done(self, path, error=""):
        """One image finished; ``error`` if it failed."""
        if error:
            self.bar.write(f"error: {error if path in error else f'{path}: {error}'}",
                           file=sys.stderr)
        self.count += 1
        self.bar.update(1)
        if self.lines:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.count * (self.total - self.count)
            print(f"{self.what}: {self.count}/{self.total} in {elapsed:.0f} s, about "
                  f"{eta:.0f} s left ({path})", file=sys.stderr, flush=True)

    def close(self):
        self.bar.close()


def make_executor(jobs, dask):
    """The executor, the BLAS/OpenMP threads per task, and how many tasks to keep in flight."""
    if dask is not None:
        from gmmseg import cluster

        client = cluster.connect(dask)
        slots = max(1, sum(client.nthreads().values()))
        return DaskExecutor(client), 1, slots
    if jobs == 1:
        return InProcess(), None, 1

    threads = max(1, (os.cpu_count() or 1) // jobs)
    return Pool(jobs), threads, jobs


def _collect(pending, results, report, failed, error):
    """Wait for tasks to finish, keep their results, report them (``run_tasks``).

    Returns
    -------
    broken : list of (path, str)
        The tasks whose worker died (``cf.BrokenExecutor``) and why, for the
        caller to retry or to keep as failures. Not the exceptions: their
        tracebacks hold the broken pool, which ``Pool.renew`` must free.
    """
    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
    broken = []
    for future in finished:
        path = pending.pop(future)
        try:
            result = future.result()
        except cf.BrokenExecutor as exc:
            broken.append((path, first_line(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - the task itself failed: a cluster that
            # cannot unpickle it, say; the image fails, the batch goes on.
            result = failed(path, first_line(exc))
        results[path] = result
        report.done(path, error(result))
    return broken


def first_line(exc):
    """An exception in one line: its type and its message's first line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class InProcess(cf.Executor):
    """Runs each task at once in this process: ``jobs=1`` without worker start-up."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future

    def renew(self):
        """Nothing to renew: no worker can die apart from this process."""
        return False


def worker_start():
    """A worker's first step: tqdm's lock a thread lock, not a multiprocessing one.

    tqdm creates a multiprocessing RLock for its bars (EM's, even disabled),
    a semaphore registered with the resource tracker. A worker killed by a
    signal cannot unregister it, and the tracker warned at the batch's end of
    "2 leaked semaphore objects" (measured); a worker's bars never share a
    terminal with another process's, so a thread lock is enough.
    """
    import threading

    tqdm.set_lock(threading.RLock())


class Pool(cf.Executor):
    """Worker processes that can be renewed when one dies (``run_tasks``).

    A worker killed by a signal breaks a ``ProcessPoolExecutor`` for good:
    every task in flight fails with ``BrokenProcessPool``, and no more can be
    submitted. ``renew`` shuts the broken pool down (its queues and their
    semaphores with it) and starts a new one.
    """

    def __init__(self, jobs):
        import multiprocessing

        self.jobs, self.context = jobs, multiprocessing.get_context("spawn")
        self.pool = self._new()

    def _new(self):
        # spawn: a fresh interpreter per worker, whatever threads this process runs.
        return cf.ProcessPoolExecutor(self.jobs, mp_context=self.context,
                                      initializer=worker_start)

    def submit(self, fn, /, *args, **kwargs):
        return self.pool.submit(fn, *args, **kwargs)

    def renew(self):
        """A new pool in place of a broken one (a working one is kept); True."""
        try:  # a broken pool refuses any task: the public way to ask
            self.pool.submit(int)
        except cf.BrokenExecutor:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = self._new()
        return True

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class DaskExecutor(cf.Executor):
    """A Dask client's executor that closes the client when the batch ends."""

    def __init__(self, client):
        self.client, self.executor = client, client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self.executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.executor.shutdown(wait=wait)
        self.client.close()

    def renew(self):
        """Dask reschedules a dead worker's tasks itself: a failure here is final."""
        return False
