"""What several tabs share: the ValueError -> gr.Error wrapper, the progress adapter, the
checkpoint dropdowns, the depth and version controls, and the scratch folder for downloads."""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr

from explorer import pretrained

from . import session


def user_errors(fn):
    """Turns the package's ValueError into a message in the page, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            # stays until closed: a message that fades leaves only a bare "Error" badge behind
            raise gr.Error(str(err), duration=None, print_exception=False) from None

    return wrapper


def progress_callback(progress):
    """The package's `progress(fraction, text)` callbacks, shown by Gradio's progress bar."""
    return lambda fraction, text: progress(fraction, desc=text)


def data_notice(notice: str, text: str) -> str:
    """`text` led by the notice that generated images stand in for CIFAR-10 (offline), if any."""
    return f"*{notice}*\n\n{text}" if notice else text


@functools.lru_cache(maxsize=1)
def _scratch_folder() -> Path:
    """This process's own folder for downloads (mode 0700, a fresh name: never a folder or
    link another user of a shared /tmp planted)."""
    return Path(tempfile.mkdtemp(prefix="resnet-explorer-downloads-"))


def clean_scratch() -> Path:
    """The scratch folder, its downloads older than an hour removed (Gradio has copied them
    into its own cache by then)."""
    folder = _scratch_folder()
    for old in folder.iterdir():
        try:
            if time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        except OSError:
            pass
    return folder


def scratch_path(name: str) -> str:
    """A new file path for a download, named `name` (the name the browser saves it under)
    in a folder of its own, so two downloads of the same name never meet."""
    folder = clean_scratch() / uuid.uuid4().hex[:12]
    folder.mkdir()
    return str(folder / name)


def depth_and_version(depth: int, elem_id: str):
    """The depth box and version radio of the Train and Gradient flow tabs."""
    return (gr.Number(value=depth, precision=0, label="Depth", elem_id=elem_id),
            gr.Radio([1, 2], value=1, label="Version"))


def checkpoint_choices(request=None) -> list[tuple[str, str]]:
    """Shipped checkpoints, then this browser's finished jobs (never another's)."""
    if request is None:
        return pretrained.checkpoint_choices()
    return pretrained.checkpoint_choices(session.jobs(), session.owner(request))


def checkpoint_path(name, request) -> Path:
    """A checkpoint looked up by name (manifest) or `job:<id>` (this browser): never a path."""
    return pretrained.resolve(name, session.jobs(), session.owner(request))


def checkpoint_dropdown(label: str, elem_id: str, value=None, choices=None, **kwargs):
    """A checkpoint dropdown that also takes names outside its list (allow_custom_value): an
    API caller may name a job of its session or a checkpoint shipped after start-up, which
    Gradio would refuse otherwise; the handlers look every name up themselves."""
    choices = checkpoint_choices() if choices is None else choices
    return gr.Dropdown(choices, value=value, label=label, elem_id=elem_id, allow_custom_value=True, **kwargs)


@user_errors
def refresh_checkpoints(current=None, request: gr.Request = None):
    """The checkpoint list with this browser's new models; keeps the current choice."""
    values = [value for _, value in checkpoint_choices(request)]
    return gr.Dropdown(choices=checkpoint_choices(request),
                       value=current if current in values else (values[0] if values else None))


@user_errors
def refresh_compare(current=None, request: gr.Request = None):
    """The optional second checkpoint's list; keeps the current choice (or none)."""
    choices = checkpoint_choices(request)
    return gr.Dropdown(choices=choices, value=current if current in [value for _, value in choices] else None)
