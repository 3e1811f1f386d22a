"""The page's side of the playground's live runs (`compute.playground_task`): for each page
session, its settings, the run now training, the newest snapshot and the loss curves so far.

The page asks (`start`, `pause`, `step`, `reset`) and looks (`view`, twice a second while it
trains); the snapshots arrive on their own, as engine events, and only the newest is kept. A
session's runs go to the worker that holds its trainer (named by the run's "started" event),
so Pause then Start goes on where it stopped; a first Start of the default settings goes to
the worker that compiled them ahead (`warm`).

A run whose page stops looking for `ABANDONED_SECONDS` (closed, or gone) is paused, and at
most `max_live` sessions train at once: a live run holds an engine worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
import warnings
from collections import OrderedDict

from explorer.compute import playground_task
from explorer.compute.engine import USER, EngineError, Step
from explorer.core.playground_settings import MAX_PAGE_STEPS, PlaygroundSettings, read_steps

LIVE_STATES = ("starting", "training")  # a run submitted or training: it holds a worker
ABANDONED_SECONDS = 15.0  # a run whose page has not looked for this long is paused
HISTORY_POINTS = 1_000  # loss-curve points kept a session (older ones thinned, every other dropped)
STOP_WAIT_SECONDS = 20.0  # how long a new run waits for the session's last to end (a compile: ~5 s)
# a run no worker has started after this long is cancelled (its worker may be busy with another
# session's run, which ends within `playground_task.MAX_LIVE_SECONDS`)
START_LIMIT_SECONDS = playground_task.MAX_LIVE_SECONDS + 60
MAX_SESSIONS = 256  # sessions kept, least recently used out (an idle one is a few small arrays)
DEFAULT_MAX_LIVE = 2  # sessions that may train at once (each holds a worker while it trains)
MOST_LIVE = 16  # the most `EXPLORER_PLAYGROUNDS` may ask for


def max_live(requested: str | None) -> int:
    """Sessions that may train at once, from `EXPLORER_PLAYGROUNDS` (None or "": the default).

    Raises:
        ValueError: not a whole number from 1 to `MOST_LIVE`.
    """
    if requested in (None, ""):
        return DEFAULT_MAX_LIVE
    try:
        count = int(requested)
    except ValueError:
        count = 0
    if not 1 <= count <= MOST_LIVE:
        raise ValueError(f"EXPLORER_PLAYGROUNDS must be a whole number from 1 to {MOST_LIVE}; "
                         f"got {requested!r}")
    return count


def _empty_history() -> dict:
    return {"step": [], **{net: {"train_loss": [], "test_loss": []} for net in ("residual", "plain")}}


@dataclasses.dataclass
class Session:
    """One page session's playground."""

    settings: PlaygroundSettings
    state: str = "idle"  # idle, starting, training, paused, failed
    note: str = ""  # what the run is doing now ("compiling ...")
    error: str = ""
    ended: str = ""  # why the last run ended: paused, steps done, time limit, looked
    snapshot: dict | None = None  # the newest (`playground_task.expand`)
    history: dict = dataclasses.field(default_factory=_empty_history)
    version: int = 0  # counts the changes a page may draw
    snapshots: int = 0  # counts the snapshots received
    action: str = ""  # the last run's (`playground_task.ACTIONS`)
    run_id: str | None = None
    future: object = None
    address: str | None = None  # the worker holding this session's trainer for `settings`
    polled: float = dataclasses.field(default_factory=time.monotonic)
    stop_sent: bool = False


class Playgrounds:
    """Every page session's playground.

    Args:
        engine: a callable returning the `Engine` (`compute.engine.engine`).
        stop_signal: `stop_signal(run_id)` pauses a run, `stop_signal(run_id, clear=True)`
            forgets the signal once the run has ended (default: its Dask `Event`, set, cleared).
        max_live: sessions that may train at once.
        abandoned_seconds: a run is paused when its page has not looked for this long.
    """

    def __init__(self, engine, stop_signal=None, max_live: int = DEFAULT_MAX_LIVE,
                 abandoned_seconds: float = ABANDONED_SECONDS):
        self._engine = engine
        self._stop_signal = stop_signal or self._set_stop_event
        self.max_live = int(max_live)
        self.abandoned_seconds = abandoned_seconds
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Condition()
        self._warm: dict[str, str] = {}  # settings key -> the worker holding that pair compiled
        self._warming: set[str] = set()

    # ------------------------------------------------------------------------- asking

    def start(self, key: str, settings: PlaygroundSettings) -> dict:
        """Trains the session's twins until paused (from where they are, if the settings are
        the same; from step 0 otherwise). A session already training these settings goes on."""
        session = self._session(key, settings)
        if session.state in LIVE_STATES and session.settings == settings and session.action == "run":
            return self.view(key)
        self._end_run(session)
        self._use(session, settings)
        return self._submit(key, session, "run")

    def step(self, key: str, settings: PlaygroundSettings, steps) -> dict:
        """Trains `steps` steps (1 to `MAX_PAGE_STEPS`), pausing a run first."""
        steps = read_steps(steps, MAX_PAGE_STEPS)
        session = self._session(key, settings)
        self._end_run(session)
        self._use(session, settings)
        return self._submit(key, session, "step", steps)

    def reset(self, key: str, settings: PlaygroundSettings) -> dict:
        """Back to step 0 with `settings` (the same initial weights and batches), drawn at once."""
        session = self._session(key, settings)
        self._end_run(session)
        self._use(session, settings)
        with self._lock:
            session.history, session.snapshot = _empty_history(), None
        return self._submit(key, session, "reset")

    def pause(self, key: str, wait: float = 3.0) -> dict:
        """Pauses the session's run; waits up to `wait` seconds for it to end."""
        session = self._sessions.get(key)
        if session is None:
            raise ValueError("nothing to pause: press Start first")
        if session.state in LIVE_STATES:
            self._signal_stop(session)
            self._wait_ended(session, wait)
        return self.view(key)

    # ------------------------------------------------------------------------- looking

    def view(self, key: str) -> dict:
        """What the page draws: {"state", "note", "error", "ended", "version", "settings",
        "snapshot" (None before the first), "history" (copies of the curves)}; an unknown
        session is "idle". Looking keeps a run from being paused as abandoned."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return idle_view()
            session.polled = time.monotonic()
            history = {"step": list(session.history["step"]),
                       **{net: {name: list(values) for name, values in session.history[net].items()}
                          for net in ("residual", "plain")}}
            return {"state": session.state, "note": session.note, "error": session.error,
                    "ended": session.ended, "version": session.version, "snapshots": session.snapshots,
                    "settings": session.settings, "snapshot": session.snapshot, "history": history}

    def wait_for(self, key: str, version: int, timeout: float, counter: str = "version") -> dict:
        """The view once its `counter` ("version": any change; "snapshots": a snapshot) is past
        `version`, or after `timeout` seconds, whichever is first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                session = self._sessions.get(key)
                left = deadline - time.monotonic()
                if session is None or getattr(session, counter) > version or left <= 0:
                    break
                self._lock.wait(left)
        return self.view(key)

    # ------------------------------------------------------------------------- warm-up

    def warm(self, settings: PlaygroundSettings | None = None) -> None:
        """Compiles `settings`' pair (the defaults) ahead on a worker, a warm-up of two steps (the
        build, the compile: `Engine.warm_up`); does nothing when it is warm already or warming."""
        settings = settings or PlaygroundSettings()
        key = playground_task.settings_key(settings)
        with self._lock:
            if key in self._warm or key in self._warming:
                return
            self._warming.add(key)

        def read():
            try:
                pair, warm_pair = settings.to_dict(), playground_task.warm_pair
                build, compiled = Step(warm_pair, (pair, False)), Step(warm_pair, (pair,))
                address = self._engine().warm_up([build, compiled]).result()["address"]
                with self._lock:
                    self._warm[key] = address
            except Exception as err:  # noqa: BLE001 - a warm-up lost costs the first Start its speed only
                warnings.warn(f"the playground's pair was not compiled ahead: {err}", stacklevel=1)
            finally:
                with self._lock:
                    self._warming.discard(key)

        threading.Thread(target=read, name="warm-playground", daemon=True).start()

    def is_warm(self, settings: PlaygroundSettings | None = None) -> bool:
        """Whether `settings`' pair (the defaults) is compiled ahead on a worker."""
        with self._lock:
            return playground_task.settings_key(settings or PlaygroundSettings()) in self._warm

    # ------------------------------------------------------------------------- inside

    def _session(self, key: str, settings: PlaygroundSettings) -> Session:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = Session(settings)
                while len(self._sessions) > MAX_SESSIONS:
                    oldest = next(iter(self._sessions))
                    if self._sessions[oldest].state in LIVE_STATES:
                        break  # never forget a session that trains (its run would lose its page)
                    self._sessions.pop(oldest)
            self._sessions.move_to_end(key)
            session.polled = time.monotonic()
            return session

    def _use(self, session: Session, settings: PlaygroundSettings) -> None:
        """New settings start new curves on a new trainer (wherever a warm one is)."""
        with self._lock:
            if session.settings != settings:
                session.settings, session.address = settings, None
                session.history, session.snapshot = _empty_history(), None

    def _end_run(self, session: Session) -> None:
        """Pauses the session's run, if any, and waits for it to end (up to `STOP_WAIT_SECONDS`:
        a run still compiling ends when the compile does; the next run queues behind it)."""
        if session.state in LIVE_STATES:
            self._signal_stop(session)
            self._wait_ended(session, STOP_WAIT_SECONDS)

    def _submit(self, key: str, session: Session, action: str, steps: int | None = None) -> dict:
        with self._lock:
            training = sum(other.state in LIVE_STATES
                           for name, other in self._sessions.items() if name != key)
            if training >= self.max_live:
                raise ValueError(f"{training} playgrounds are training on this server now (at most "
                                 f"{self.max_live} at once): try again when one pauses")
            run_id = uuid.uuid4().hex[:12]
            session.run_id, session.state, session.error, session.ended = run_id, "starting", "", ""
            session.action = action
            session.note, session.stop_sent = "sent to the engine", False
            session.version += 1
            settings = session.settings
        address = self._where(session)
        future = self._engine().submit(
            playground_task.live_run, key, settings.to_dict(), action, run_id, steps=steps, priority=USER,
            events=lambda message: self._on_event(key, message), workers=[address] if address else None)
        with self._lock:
            session.future = future
        threading.Thread(target=self._watch, args=(key, run_id, future), name="playground-run",
                         daemon=True).start()
        return self.view(key)

    def _where(self, session: Session) -> str | None:
        """The worker to send the session's run to, if it is still there: the one holding its
        trainer, else the one holding its settings compiled ahead."""
        with self._lock:
            address = session.address or self._warm.get(playground_task.settings_key(session.settings))
        if not address:
            return None
        try:
            return address if address in self._engine().workers() else None
        except Exception:  # noqa: BLE001 - no preference when the scheduler cannot say
            return None

    def _on_event(self, key: str, message: dict) -> None:
        """An event of a run (on the engine client's thread: no calls to the cluster here)."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None or not isinstance(message, dict) or message.get("run") != session.run_id:
                return  # a run replaced since: its last snapshots are not this session's
            if session.state not in LIVE_STATES:
                return  # a run ended, its last snapshot taken from its result: a late event is older
            kind = message.get("kind")
            if kind == "status":
                session.note = str(message.get("text", ""))
            elif kind == "started":
                session.address, session.state, session.note = message.get("address"), "training", ""
                if message.get("how") in ("warm", "built"):  # taken, or not there after all: compiled
                    # again for the next visitor once this run ends (`_watch`)
                    self._warm.pop(playground_task.settings_key(session.settings), None)
            elif kind == "snapshot":
                snapshot = playground_task.expand(message)
                _record(session.history, snapshot)
                session.snapshot, session.note = snapshot, ""
                session.snapshots += 1
            session.version += 1
            self._lock.notify_all()

    def _watch(self, key: str, run_id: str, future) -> None:
        """Waits for a run to end (pausing it if its page is gone, cancelling it if no worker
        took it in `START_LIMIT_SECONDS`), then records how it ended."""
        submitted = time.monotonic()
        while not future.done():
            time.sleep(0.05)
            with self._lock:
                session = self._sessions.get(key)
                ours, now = session is not None and session.run_id == run_id, time.monotonic()
                gone = ours and not session.stop_sent and now - session.polled > self.abandoned_seconds
                stuck = ours and session.state == "starting" and now - submitted > START_LIMIT_SECONDS
            if gone:
                self._signal_stop(session)
            if stuck:  # its worker gone since it was sent there, say: a run never waits for ever
                with contextlib.suppress(Exception):
                    future.cancel()
                break
        try:
            if future.cancelled() or not future.done():
                raise EngineError(f"no engine worker took this run within {START_LIMIT_SECONDS:.0f} s: "
                                  "press Start again")
            result, error = self._engine().result(future), ""
        except (ValueError, EngineError) as err:
            result, error = None, str(err)
        except Exception as err:  # noqa: BLE001 - a failed run is reported on the page, the app goes on
            result, error = None, f"{type(err).__name__}: {err}"[:500]
        with contextlib.suppress(Exception):  # the event's name is not reused; clearing frees it
            self._stop_signal(run_id, clear=True)
        with self._lock:
            session = self._sessions.get(key)
            if result and session is not None and session.run_id == run_id:
                self._take_last_snapshot(session, result)
            if session is not None and session.run_id == run_id:
                session.state = "failed" if error else "paused"
                session.error, session.note = error, ""
                session.ended = result["ended"] if result else ""
                session.address = result["address"] if result else session.address
                session.version += 1
                self._lock.notify_all()
        if result and not self.is_warm():
            self.warm()  # the default pair taken (or never compiled): ready for the next visitor

    @staticmethod
    def _take_last_snapshot(session: Session, result: dict) -> None:
        """The snapshot a run ended at, from its result (the lock held): its event may come
        later (events and results travel apart), and "paused" must come with it."""
        last = result.get("last")
        if last and (session.snapshot or {}).get("step") != last["step"]:
            session.snapshot = playground_task.expand(last)
            _record(session.history, session.snapshot)
            session.snapshots += 1

    def _signal_stop(self, session: Session) -> None:
        with self._lock:
            run_id, session.stop_sent = session.run_id, True
            if session.state in LIVE_STATES:
                session.note = "pausing"
        if run_id:
            self._stop_signal(run_id)

    def _set_stop_event(self, run_id: str, clear: bool = False) -> None:
        from distributed import Event  # deferred: importing this module must not load Dask

        event = Event(playground_task.stop_event_name(run_id), client=self._engine().client)
        event.clear() if clear else event.set()

    def _wait_ended(self, session: Session, seconds: float) -> None:
        """Waits until the session's run has ended and been recorded (`_watch`), at most `seconds`."""
        deadline = time.monotonic() + seconds
        with self._lock:
            run_id = session.run_id
            while session.run_id == run_id and session.state in LIVE_STATES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)


def idle_view() -> dict:
    """The view of a session that has not started (`Playgrounds.view`)."""
    return {"state": "idle", "note": "", "error": "", "ended": "", "version": 0, "snapshots": 0,
            "settings": None, "snapshot": None, "history": _empty_history()}


def _record(history: dict, snapshot: dict) -> None:
    """Adds a snapshot's losses to the curves (a step back, a reset or a trainer built anew,
    starts them again)."""
    steps = history["step"]
    if steps and snapshot["step"] < steps[-1]:
        history.clear()
        history.update(_empty_history())
    elif steps and snapshot["step"] == steps[-1]:
        return
    history["step"].append(snapshot["step"])
    for net in ("residual", "plain"):
        for name in ("train_loss", "test_loss"):
            history[net][name].append(snapshot[net][name] if net in snapshot else None)
    if len(history["step"]) > HISTORY_POINTS:  # every other one of the older half dropped
        half = len(history["step"]) // 2
        keep = list(range(0, half, 2)) + list(range(half, len(history["step"])))
        history["step"][:] = [history["step"][i] for i in keep]
        for net in ("residual", "plain"):
            for name in ("train_loss", "test_loss"):
                history[net][name][:] = [history[net][name][i] for i in keep]

