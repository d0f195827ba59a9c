"""Run jpegbench's batch work on a Dask cluster: get a client, map tasks with progress, cache per worker.

The local executors stay the default; ``synthesize``, ``estimate_inputs``
(and later ``evaluate``) take ``scheduler=`` and hand their tasks to
:func:`run_tasks`. What the stages share lives here, once:

* :func:`cluster_client` -- a ``distributed.Client`` for ``"local"`` (a
  :class:`~distributed.LocalCluster` of single-threaded worker processes on
  127.0.0.1), for the address of a running scheduler (``tcp://host:port``,
  reached within :func:`connect_timeout` or a :class:`ClusterError`), or for a
  client the caller already holds (used as is, not closed).
* :func:`run_tasks` -- submit ``fn(task, *args)`` for every task, call
  ``on_result`` on the client as each finishes (a journal row, a progress
  step), return the results in task order: what the caller writes never
  depends on the number of workers or on the order tasks finish in. A worker
  that dies costs only the tasks it held: the scheduler runs them again
  elsewhere, so a task must be idempotent (same inputs, same files).
* :func:`worker_cache` -- objects a worker builds once and keeps for the next
  tasks (models, weights, curve tables), keyed by what they were built from.

Tasks run one at a time in a worker process (a lock), whatever ``--nthreads``
the worker was started with: jpegbench's per-process state (the image
limits, the writer's source cache) is not shared between threads. Start
workers with ``--nthreads 1`` and one process per core instead.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Sequence

from jpegbench.errors import ClusterError, InputError

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "cluster_client", "is_client", "check_scheduler", "connect_timeout", "run_tasks", "worker_cache", "n_threads",
]  # fmt: skip

#: Seconds to reach a scheduler (and to see its first worker) unless ``$JPEGBENCH_SCHEDULER_TIMEOUT`` says otherwise.
DEFAULT_TIMEOUT_S = 10.0
_EXTRA = "pip install 'jpegbench[dask]'"


def connect_timeout() -> float:
    """Seconds allowed to reach a scheduler: ``$JPEGBENCH_SCHEDULER_TIMEOUT``, else :data:`DEFAULT_TIMEOUT_S`."""
    env = os.environ.get("JPEGBENCH_SCHEDULER_TIMEOUT")
    if not env:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(env)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise InputError(f"JPEGBENCH_SCHEDULER_TIMEOUT must be a number of seconds > 0, got {env!r}")
    return value


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--scheduler needs the optional dependency dask.distributed: {_EXTRA}") from None
    return distributed


def is_client(scheduler: Any) -> bool:
    return type(scheduler).__name__ == "Client" and type(scheduler).__module__.startswith("distributed")


def check_scheduler(scheduler: Any, workers: int) -> None:
    """Refuse a ``scheduler`` argument that cannot work, before any work or connection.

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"local"``, a scheduler address such as ``tcp://10.0.0.5:8786``, or a client.
    workers : int
        Worker processes of ``"local"`` (ignored otherwise: a running cluster has its own).

    Raises
    ------
    InputError
        Not a string or client, an empty address, ``"local"`` with ``workers < 1``.
    ClusterError
        dask.distributed is not installed (the ``jpegbench[dask]`` extra).
    """
    if is_client(scheduler):
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise InputError(f"scheduler must be 'local' or an address such as tcp://host:8786, got {scheduler!r}")
    if scheduler == "local" and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--scheduler local needs --workers >= 1 (worker processes to start), got {workers!r}")
    _distributed()


def _probe(address: str, timeout: float) -> None:
    """Reach the scheduler once, so that a wrong address fails before a ``Client`` exists.

    A ``Client`` whose constructor failed still tries to close itself when it
    is collected, blocking for seconds and printing a traceback; a bare
    connection does not.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def reach() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:  # in a thread of its own: the caller may be running an event loop (a notebook)
        with ThreadPoolExecutor(1) as ex:
            ex.submit(asyncio.run, reach()).result()
    except (OSError, asyncio.TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({_one_line(exc)})") \
            from None  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a Dask scheduler address: {address!r} ({_one_line(exc)}); "
                         "expected e.g. tcp://host:8786 or 'local'") from None  # fmt: skip


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def cluster_client(scheduler: Any, *, workers: int = 1, timeout: float | None = None) -> Iterator[Client]:
    """A ``distributed.Client`` for ``scheduler``, closed on exit (a caller's own client is left open).

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"local"``: start a LocalCluster of ``workers`` single-threaded
        processes on 127.0.0.1 (stopped on exit). An address
        (``tcp://host:port``): connect to that running scheduler and wait for
        one worker. A client: use it.
    workers : int
        Worker processes of ``"local"``.
    timeout : float, optional
        Seconds to reach the scheduler and see a worker (default :func:`connect_timeout`).

    Raises
    ------
    InputError
        See :func:`check_scheduler`; an address that does not parse.
    ClusterError
        distributed missing; the scheduler unreachable, or without workers, within ``timeout``.
    """
    check_scheduler(scheduler, workers)
    if is_client(scheduler):
        yield scheduler
        return
    distributed = _distributed()
    t = connect_timeout() if timeout is None else timeout
    import logging

    if scheduler == "local":
        # The scheduler's HTTP server on any free port: 8787 may be another cluster's (a warning, then a retry).
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster, set_as_default=False) as client:  # fmt: skip
            yield client
        return
    _probe(scheduler, t)
    with distributed.Client(scheduler, timeout=t, set_as_default=False) as client:
        try:
            client.wait_for_workers(1, timeout=t)
        except (TimeoutError, OSError):
            raise ClusterError(f"the Dask scheduler at {scheduler} has no worker (none joined within {t:g} s); "
                               f"start some with `dask worker {scheduler}`") from None  # fmt: skip
        yield client


def n_threads(client: Client) -> int:
    """Tasks the cluster runs at once (the sum of its workers' threads), at least 1."""
    return max(1, sum(client.nthreads().values()))


# --- worker side ------------------------------------------------------------------------------------------

_TASK_LOCK = threading.Lock()
_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 4


def _call(fn: Callable[..., Any], task: Any, *args: Any) -> Any:
    """Run one task on a worker, one at a time per process (see the module docstring)."""
    with _TASK_LOCK:
        return fn(task, *args)


def worker_cache(key: Hashable, build: Callable[[], Any]) -> Any:
    """The object this worker process built for ``key``, or ``build()`` now (kept for later tasks).

    For what is expensive to set up and the same for every task of a run: a
    model with its weights on its device, a table of curves. ``key`` must
    name everything the object depends on (e.g. the weights' sha256 and the
    device), since a worker outlives a run and may serve the next one with
    other settings. The last few objects are kept (least recently used goes).

    Examples
    --------
    >>> from jpegbench._cluster import worker_cache
    >>> worker_cache(("doc", 1), lambda: [1, 2]) is worker_cache(("doc", 1), lambda: [3])
    True
    """
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = build()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


# --- client side ------------------------------------------------------------------------------------------


def run_tasks(
    client: Client,
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    *args: Any,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[fn(task, *args) for task in tasks]`` on the cluster, in task order.

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        A module-level function (workers import it by name: jpegbench must be
        installed on them). Its tasks must be idempotent: a task whose worker
        died is run again from the start on another worker.
    tasks : sequence
        One argument per task, sent to the worker that runs it.
    *args
        Arguments shared by every task (sent once).
    on_result : callable, optional
        ``on_result(i, result)`` on the client as task ``i`` finishes, in
        finishing order (a progress bar, a journal row).

    Returns
    -------
    list
        The results, ``results[i]`` for ``tasks[i]``.

    Raises
    ------
    Exception
        The first error a task raised, as it was raised on the worker; the
        other tasks are cancelled.
    ClusterError
        A task's workers kept dying (Dask's ``allowed-failures``), or the
        scheduler went away.
    """
    from distributed import as_completed

    if not tasks:
        return []
    # pure=False: every run's tasks are new (a rerun must write again what a killed run left).
    futures = [client.submit(_call, fn, t, *args, pure=False) for t in tasks]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    try:
        for f in as_completed(futures, loop=client.loop):
            i = index[f.key]
            results[i] = _result(f)
            if on_result is not None:
                on_result(i, results[i])
    finally:
        client.cancel(futures)  # after an error: the others stop (a no-op once all are done)
    return results


def _result(future: Any) -> Any:
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise ClusterError(f"a task's worker died {_allowed_failures() + 1} times ({_one_line(exc)}); "
                           "the workers may be running out of memory") from None  # fmt: skip
    except CancelledError as exc:  # the scheduler restarted or forgot the task
        raise ClusterError(f"the Dask scheduler cancelled a task ({_one_line(exc)})") from None
    except OSError as exc:
        if type(exc).__module__.startswith("distributed"):  # CommClosedError: the scheduler went away
            raise ClusterError(f"lost the Dask scheduler ({_one_line(exc)})") from None
        raise  # a task's own error (ImageReadError is an OSError too)


def _allowed_failures() -> int:
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures", 3))
