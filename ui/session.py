"""Who owns what: the job manager (made on first use, not at import) and the browser's owner
token.

Gradio gives a page a new session_hash on every load, so a reload (or closing the page, which
the Train tab invites) would lose its jobs: the page keeps a random token in localStorage
(gr.BrowserState) and `claim_owner` maps each new session to it. Bounded, oldest first out;
API clients keep their session.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path

import gradio as gr

from explorer.compute.engine import engine
from explorer.compute.imports import ImportStore, import_task
from explorer.compute.jobs import JobManager
from explorer.core.caches import BoundedCache
from explorer.data.cifar import resolve_source
from explorer.train.config import PAGE_DEFAULTS, page_request

MAX_OWNER_SESSIONS = 10_000

_owners = BoundedCache(MAX_OWNER_SESSIONS)  # session -> owner token, the newest claims kept
_manager: JobManager | None = None
_manager_lock = threading.Lock()
_imports: ImportStore | None = None


def jobs() -> JobManager:
    """The app's one job manager: background jobs outlive requests and sessions by design.
    Made on first use from the environment (EXPLORER_RUNS, EXPLORER_MAX_EPOCHS, ...; how many
    jobs train at once is the engine's: its training workers, EXPLORER_MAX_JOBS)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            env = os.environ.get
            _manager = JobManager(
                Path(env("EXPLORER_RUNS", "runs/app")),
                max_epochs=int(env("EXPLORER_MAX_EPOCHS", "50")),
                max_seconds=float(env("EXPLORER_JOB_SECONDS", "3600")),
                max_per_owner=int(env("EXPLORER_JOBS_PER_USER", "4")),  # two races
                max_kept=int(env("EXPLORER_KEEP_JOBS", "200")),
                # the Train tab's default job, built and traced ahead by a training worker (0: none)
                prepare=(page_request(**PAGE_DEFAULTS, source=resolve_source()[0])
                         if env("EXPLORER_PREPARE", "1") != "0" else None),
            )
        return _manager


def _import_on_engine(path: str, preprocess: str | None) -> tuple[dict, dict]:
    """An upload imported on the engine (the file read, the model built and the proof's passes:
    a worker's work, not the page's), with the app's data source for the tutorial's mean and
    the proof's images."""
    return engine().run(import_task, path, preprocess, resolve_source()[0])


def imports() -> ImportStore:
    """The app's imported models (`EXPLORER_RUNS`/imports), made on first use."""
    global _imports
    with _manager_lock:
        if _imports is None:
            root = Path(os.environ.get("EXPLORER_RUNS", "runs/app")) / "imports"
            _imports = ImportStore(root, _import_on_engine)
        return _imports


def session_of(request) -> str:
    """The Gradio session of a request (its imports end with it)."""
    return getattr(request, "session_hash", None) or "anonymous"


def end_session(request: gr.Request):
    """A page closed (Gradio's `unload`): the models its session imported are removed."""
    if _imports is not None:
        _imports.end_session(session_of(request))


def owner(request) -> str:
    """Who owns jobs for this request: the browser's token for a page, else the session."""
    session = getattr(request, "session_hash", None) or "anonymous"
    return _owners.get(session, session)


def claim_owner(token, request: gr.Request):
    """Page load: this session acts for the browser's owner token (made here the first time)."""
    if not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{32}", token)):
        token = uuid.uuid4().hex
    session = getattr(request, "session_hash", None)
    if session:
        _owners.put(session, token)
    return token


def owner_state():
    """The browser's owner token, kept in localStorage. A fixed key and secret: the stored
    token still reads after the app restarts (its jobs survive restarts); the token is an
    identifier, not a credential worth encrypting."""
    return gr.BrowserState(None, storage_key="resnet-explorer-owner",
                           secret=os.environ.get("EXPLORER_OWNER_SECRET", "resnet-explorer-owner"))
