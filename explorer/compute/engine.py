"""The engine: every study the page asks for runs as a task on a Dask cluster, never in the web
process's threads.

By default the app starts its own cluster: a scheduler in its process and `dask worker`
processes beside it (one thread each, so TensorFlow in a worker runs one pass at a time and
keeps its oneDNN kernels, which corrupt the heap of a process that runs passes from several
threads). `EXPLORER_SCHEDULER=tcp://host:8786` makes the app a client of a cluster started
elsewhere instead; more machines join it with the command `local_cluster.worker_command` prints.

Why `dask worker` processes and not `LocalCluster(processes=True)`: a LocalCluster spawns its
workers with multiprocessing, which imports the parent's main module again in each child;
for `python app.py` that is the whole page (Gradio, every tab built) in every worker. A
`dask worker` process starts clean, and it is the same command a second machine runs.

A visitor's request outranks the warm-ups waiting in the scheduler's queue (`USER` against
`WARM`, Dask task priorities). Dask runs a task it has started to its end, so a warm-up is
sent as a chain of short tasks (`Engine.warm_up`, one build or one pass each): a request
waiting on a worker that warms waits for one step, not for the whole warm-up.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from explorer.compute import local_cluster, shipping
from explorer.compute.local_cluster import TRAINING_SLOT, EngineError

SCHEDULER = "EXPLORER_SCHEDULER"  # tcp://host:8786: use that cluster, start none
FALLBACK = "EXPLORER_SCHEDULER_FALLBACK"  # "local": start one if the scheduler does not answer
CONNECT_SECONDS = 10  # how long an unanswered scheduler address is waited for
ALLOWED_FAILURES = 1  # reruns of a task whose worker died, before it is reported
USER, WARM = 10, -10  # task priorities: a visitor's request, a warm-up
LOG_TASKS = "EXPLORER_LOG_TASKS"  # "1": each task's start and seconds in the worker's log


def _forward(topic: str):
    """In a worker: a `progress(fraction, text)` callback that sends each call to the page."""
    from distributed import get_worker  # deferred: importing the engine's names must not load Dask

    worker = get_worker()
    return lambda fraction, text: worker.log_event(topic, [float(fraction), str(text)])


def call(fn, args, kwargs, topic: str | None, files: dict | None = None, warm: bool = False):
    """In a worker: runs `fn(*args, **kwargs)`, its progress (if it reports any) sent back, the
    files the app sent with it (`shipping`) read from this worker's copies.
    With `EXPLORER_LOG_TASKS=1` each task's name (marked "(warm-up)" for a `WARM` one), clock
    time and seconds go to the worker's stderr (the app's log): which task held a worker, when a
    request waited (bench/warm_hold.py reads it)."""
    args, kwargs = shipping.unpack(args, kwargs, files)
    if topic is not None:
        kwargs = {**kwargs, "progress": _forward(topic)}
    if os.environ.get(LOG_TASKS) != "1":
        return fn(*args, **kwargs)
    name, start = getattr(fn, "__qualname__", repr(fn)) + (" (warm-up)" if warm else ""), time.perf_counter()
    print(f"[engine] {time.strftime('%H:%M:%S')} {name} started", file=sys.stderr, flush=True)
    try:
        return fn(*args, **kwargs)
    finally:
        print(f"[engine] {time.strftime('%H:%M:%S')} {name} ended after {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)


def _takes_progress(fn) -> bool:
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Step:
    """One step of a warm-up (`Engine.warm_up`): `fn(*args, **kwargs)`, a function of the
    package, one build or one pass long. It finds what the steps before it kept in the worker;
    where they did not run there (a worker gone since), it does their part itself (a probe's
    build, a pair's build) or the warm-up is lost, and with it only a head start (a job's
    preparation is taken only once all its stages ran in one worker)."""

    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


class Engine:
    """The app's client of a Dask cluster: submits studies, forwards their progress, turns a
    dead worker into a clear message.

    Args:
        client: a connected `distributed.Client`.
        cluster: the scheduler this app started (None when it joined one).
        processes: the local worker processes this app started.
    """

    def __init__(self, client, cluster=None, processes=()):
        self.client = client
        self.cluster = cluster
        self.processes = list(processes)
        self.trainers = 0  # the app's own training workers (started by `start_trainers`)
        self._trainers_started = False
        self._spawner: local_cluster.Spawner | None = None
        self._closed = False
        self.scratch: str | None = None  # the local workers' folder, removed on close
        self._homes: dict = {}  # what a worker keeps warm -> its address
        self._pending_homes: dict = {}  # task key -> home, until its result is read
        # a cluster joined may have workers on other machines: tasks carry the files they read
        self.shipper = shipping.FileShipper(client) if shipping.should_ship(joined=cluster is None) else None

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    @classmethod
    def start(cls, address: str | None = None, workers: int | None = None, fallback: str | None = None,
              wait: bool = False, trainers: int | None = None) -> Engine:
        """Connects to the scheduler at `address` (default `EXPLORER_SCHEDULER`), or starts the
        app's own cluster when there is none.

        Args:
            address: a scheduler's address; None reads `EXPLORER_SCHEDULER`, "" starts a local one.
            workers: local workers to start (default `local_cluster.local_workers()`).
            fallback: "local" to start a local cluster when `address` does not answer (default
                `EXPLORER_SCHEDULER_FALLBACK`).
            wait: wait until the local workers have joined.
            trainers: local workers that train jobs (default `EXPLORER_MAX_JOBS`, 2), started
                by the first job or by `start_trainers`, not at once: the page's first visitor
                does not wait for their imports.

        Raises:
            EngineError: the scheduler does not answer within `CONNECT_SECONDS` and no fallback
                was asked for.
        """
        from distributed import Client  # deferred: importing the engine's names must not load Dask

        address = os.environ.get(SCHEDULER, "") if address is None else address
        fallback = os.environ.get(FALLBACK, "") if fallback is None else fallback
        if address:
            try:
                return cls(Client(address, timeout=CONNECT_SECONDS, set_as_default=False))
            except (OSError, TimeoutError) as err:
                if fallback != "local":
                    raise EngineError(f"the Dask scheduler at {address} did not answer within "
                                      f"{CONNECT_SECONDS} s ({type(err).__name__}); start it, or set "
                                      f"{FALLBACK}=local to run on this machine instead") from None
                print(f"the Dask scheduler at {address} did not answer; {FALLBACK}=local: starting a local "
                      "cluster", file=sys.stderr, flush=True)
        engine = cls._local(workers if workers is not None else local_cluster.local_workers(), wait)
        engine.trainers = local_cluster.local_trainers() if trainers is None else trainers
        return engine

    @classmethod
    def _local(cls, workers: int, wait: bool) -> Engine:
        import dask  # deferred: importing the engine's names must not load Dask
        from distributed import Client, LocalCluster  # deferred: as above

        # a task whose worker dies is run once more elsewhere, then reported: a study that kills
        # its worker (out of memory) says so in seconds instead of killing three more
        # and a busy worker is sent no second task ahead (saturation 1.0): what waits, waits in the
        # scheduler's queue, where a visitor's request goes before any warm-up
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                         "distributed.scheduler.worker-saturation": 1.0})
        cluster = LocalCluster(n_workers=0, host="127.0.0.1", scheduler_port=0, dashboard_address=None)
        scratch = tempfile.mkdtemp(prefix="resnet-explorer-dask-")  # the workers' spill folder
        spawner = local_cluster.Spawner(cluster.scheduler_address, scratch)
        engine = cls(Client(cluster, set_as_default=False), cluster, spawner.start(workers))
        engine.scratch, engine._spawner = scratch, spawner
        atexit.register(engine.close)
        if wait and workers:
            engine.client.wait_for_workers(workers, timeout=120)
        return engine

    # ------------------------------------------------------------------------- tasks

    def submit(self, fn, *args, priority: int = USER, progress=None, events=None, resources=None,
               workers=None, home=None, **kwargs):
        """Submits `fn(*args, **kwargs)` as a task; returns its Dask future.

        Args:
            fn: a function of the package (workers import it by name).
            priority: `USER` or `WARM`.
            progress: a `progress(fraction, text)` callback of the page, called as the task
                reports (only for functions that take `progress`).
            events: a handler of the page, called with each message the task sends on its own
                events topic (`fn` takes `topic`, the topic's name: `job_task.run_job`).
            resources: Dask worker resources the task needs ({"GPU": 1}).
            workers: the only workers it may run on (None: any).
            home: what the task's worker keeps warm (("twins", 110, 1)): the task goes to the
                worker that ran the last task of that home, if it is free soon enough for
                Dask (a preference, not a rule).

        A cluster joined (not the app's own) gets the checkpoint and image files named in the
        arguments with the task (`shipping`): its workers may be on other machines.

        Raises:
            ValueError: a file named in the arguments is too large to send (`shipping`).
        """
        allow_other = False
        if workers is None and home is not None and home in self._homes:
            workers, allow_other = [self._homes[home]], True
        topic = progress_topic = None
        if progress is not None and _takes_progress(fn):
            topic = progress_topic = self._listen(lambda message: progress(*message))
        elif events is not None:
            topic = kwargs["topic"] = self._listen(events)
        kwargs.pop("progress", None)
        found = shipping.find_files((args, kwargs)) if self.shipper is not None else []
        files = self.shipper.ship(found) if found else None
        future = self.client.submit(call, fn, args, kwargs, progress_topic, files, priority == WARM,
                                    priority=priority, pure=False, resources=resources, workers=workers,
                                    allow_other_workers=allow_other, key=f"{fn.__name__}-{uuid.uuid4().hex}")
        if home is not None:
            self._pending_homes[future.key] = home
        if topic is not None:
            future.add_done_callback(lambda _: self._unsubscribe(topic))
        return future

    def _listen(self, handler) -> str:
        """A new events topic whose messages go to `handler` (on the client's event loop)."""
        topic = f"events-{uuid.uuid4().hex}"
        self.client.subscribe_topic(topic, lambda event: handler(event[1]))
        return topic

    def _unsubscribe(self, topic: str) -> None:
        with contextlib.suppress(Exception):  # the client may be closing: nothing left to forward to
            self.client.unsubscribe_topic(topic)
        self.forget(topic)

    def run(self, fn, *args, priority: int = USER, progress=None, timeout: float | None = None, **kwargs):
        """Runs `fn(*args, **kwargs)` on the cluster and returns its result; the exceptions it
        raises (a ValueError for a bad request) are raised here.

        Raises:
            EngineError: a worker died during the task (twice: the engine reruns it once on
                another worker), or the cluster is gone.
        """
        return self.result(self.submit(fn, *args, priority=priority, progress=progress, **kwargs), timeout)

    def result(self, future, timeout: float | None = None):
        """The result of a submitted task, as `run` returns it (and raises as it does)."""
        from distributed import KilledWorker  # deferred: importing the engine's names must not load Dask

        name = str(future.key).rsplit("-", 1)[0]
        try:
            result = future.result(timeout=timeout)
        except KilledWorker:
            raise EngineError(f"the engine's worker died while running {name} (out of memory, or killed); "
                              "the page is still up: try again, or ask for less") from None
        except (OSError, TimeoutError) as err:
            raise EngineError(f"the engine did not answer {name}: {type(err).__name__}") from None
        home = self._pending_homes.pop(future.key, None)
        if home is not None:
            held = self.where(future)
            if held:
                self._homes[home] = held[0]
        return result

    def warm_up(self, steps, home=None, resources=None) -> concurrent.futures.Future:
        """Runs a warm-up's `Step`s one after another as `WARM` tasks, each on the worker that
        ran the first (its `home`, a preference: another worker where that one is gone).

        Why a chain of tasks and not one: Dask runs a task it has handed to a worker to its
        end, whatever waits behind it. Between two steps the worker takes what waits for it in
        priority order, so a visitor's request (`USER`) waits for one step of a warm-up, not
        for the whole of it (tests/test_engine.py).

        Args:
            steps: the `Step`s, in order.
            home: what the warm-up keeps warm (see `submit`); None: the chain's own.
            resources: Dask worker resources every step needs.

        Returns:
            A future of the last step's result; it fails with the first step that fails (the
            steps after it are not sent).
        """
        home = home if home is not None else ("warm-up", uuid.uuid4().hex)
        done: concurrent.futures.Future = concurrent.futures.Future()

        def chain():
            try:
                result = None
                for step in steps:
                    future = self.submit(step.fn, *step.args, priority=WARM, resources=resources, home=home,
                                         **step.kwargs)
                    result = self.result(future)  # where it ran becomes the home of the next step
                done.set_result(result)
            except BaseException as err:  # noqa: BLE001 - handed to whoever reads the future
                done.set_exception(err)

        threading.Thread(target=chain, name=f"warm-up-{steps[0].fn.__name__}", daemon=True).start()
        return done

    def where(self, future) -> list[str]:
        """The workers that hold a finished task's result (the one that ran it)."""
        with contextlib.suppress(Exception):  # a worker gone since: no preference
            return sorted(self.client.who_has(future).get(future.key, ()))
        return []

    def workers(self) -> dict:
        """The cluster's workers: address -> {"name", "resources", "nthreads"}."""
        # asked of the scheduler here, not read from `client.scheduler_info()`: that returns the
        # client's cache, which its periodic refresh (every 2 s, with no worker list) can
        # overwrite between the fetch and the return: an empty list, and a job manager that
        # took its running job's worker for gone (CI, session 22)
        identity = self.client.sync(self.client.scheduler.identity, n_workers=-1)
        return {address: {"name": info.get("name"), "resources": info.get("resources") or {},
                          "nthreads": info.get("nthreads")}
                for address, info in identity["workers"].items()}

    def has_gpu(self) -> bool:
        """Whether a worker with a GPU has joined."""
        return any(info["resources"].get("GPU") for info in self.workers().values())

    def can_train(self) -> bool:
        """Whether a worker that trains jobs has joined (or this app will start its own)."""
        return self.trainers > 0 or any(info["resources"].get(TRAINING_SLOT)
                                        for info in self.workers().values())

    def start_trainers(self) -> None:
        """Starts the app's own training workers, once (a no-op for a cluster joined)."""
        with _LOCK:
            if self._trainers_started:
                return
            self._trainers_started = True
        if self.trainers and self._spawner is not None and not self._closed:
            self.processes += self._spawner.start(self.trainers, trains=True)

    def forget(self, topic: str) -> None:
        """Drops a finished task's events from the scheduler, which keeps every topic's
        recent events for as long as it runs (a job's carry its checkpoints)."""
        def drop(dask_scheduler=None):
            # no public call drops a topic; `Broker._topics` is where distributed (pinned in
            # requirements.txt) keeps them
            dask_scheduler._broker._topics.pop(topic, None)

        with contextlib.suppress(Exception):  # a scheduler gone: nothing kept to drop
            self.client.run_on_scheduler(drop)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=5)
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


_ENGINE: Engine | None = None
_LOCK = threading.Lock()


def engine() -> Engine:
    """The process's engine, started on first use (the app starts it at launch)."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            _ENGINE = Engine.start()
        return _ENGINE
