"""What several tabs share: the ValueError -> gr.Error wrapper, the progress adapter, the
checkpoint dropdowns, the depth and version controls, the scratch folder for downloads, and
the plot every chart is drawn in (saved as SVG and PNG)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr
import pydantic
from gradio import component_meta
from gradio.components.plot import PlotData

from explorer.compute.engine import EngineError
from explorer.shipped import pretrained

from . import session

# The modebar's camera saves SVG (vector, for slides and papers); Plotly's modebar holds one
# image button, so the PNG button (a raster copy) sits beside the plot's label instead.
MODEBAR = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"],
           "toImageButtonOptions": {"format": "svg"}}
PNG_SCALE = 2  # a PNG twice the size on screen: sharp on slides


def user_errors(fn):
    """Turns the package's ValueError (a bad request) and the engine's EngineError (a worker
    lost) into a message in the page, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, EngineError) as err:
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
    return (WholeNumber(value=depth, precision=0, label="Depth", elem_id=elem_id),
            gr.Radio([1, 2], value=1, label="Version"))


def checkpoint_choices(request=None) -> list[tuple[str, str]]:
    """Shipped checkpoints, then this browser's finished jobs and imported models (never another's)."""
    if request is None:
        return pretrained.checkpoint_choices()
    return pretrained.checkpoint_choices(session.jobs(), session.owner(request), session.imports())


# The class of a tab's input panels: a link's `hide=controls` (teacher mode) hides them.
CONTROLS = "explorer-controls"


def checkpoint_path(name, request) -> Path:
    """A checkpoint looked up by name (manifest), `job:<id>` or `import:<id>` (this browser's):
    never a path."""
    return pretrained.resolve(name, session.jobs(), session.owner(request), session.imports())


def twin_name(name, request) -> str | None:
    """The shipped twin of a checkpoint: a shipped one's from the manifest, this browser's own
    (a job, an import) the shipped net of its architecture with shortcuts flipped, if any."""
    own = pretrained.is_own(name)
    try:
        path = checkpoint_path(name, request) if own else None
    except ValueError:  # removed meanwhile: using it says why
        return None
    return pretrained.twin_of(name, path)


def checkpoint_dropdown(label: str, elem_id: str, value=None, choices=None, **kwargs):
    """A checkpoint dropdown that also takes names outside its list (allow_custom_value): an
    API caller may name a job of its session or a checkpoint shipped after start-up, which
    Gradio would refuse otherwise; the handlers look every name up themselves."""
    choices = checkpoint_choices() if choices is None else choices
    return gr.Dropdown(choices, value=value, label=label, elem_id=elem_id, allow_custom_value=True, **kwargs)


def log_step(what: str) -> None:
    """With `EXPLORER_LOG_TASKS=1` (the engine's task log), a page step and its clock time on
    stderr beside the engine's tasks: which of several steps answered last (tests read it)."""
    if os.environ.get("EXPLORER_LOG_TASKS") == "1":
        print(f"[page] {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def new_choices(choices, current, fallback_first: bool = True) -> gr.Dropdown:
    """A dropdown's new choices (values or (label, value) pairs) that leave its value alone
    where `current` is among them, else choose the first (or none). Not `value=current`:
    `current` was read when the step started, and a pick made on the page while the step ran
    would be taken back when its answer came (a late overlay reset the block just chosen)."""
    values = [choice[1] if isinstance(choice, tuple) else choice for choice in choices]
    if current in values:
        return gr.Dropdown(choices=choices)
    return gr.Dropdown(choices=choices, value=values[0] if fallback_first and values else None)


@user_errors
def refresh_checkpoints(current=None, request: gr.Request = None):
    """The checkpoint list with this browser's new models; keeps the current choice."""
    return new_choices(checkpoint_choices(request), current)


@user_errors
def refresh_compare(current=None, request: gr.Request = None):
    """The optional second checkpoint's list; keeps the current choice (or none)."""
    return new_choices(checkpoint_choices(request), current, fallback_first=False)


def plot_value(fig, filename: str = "resnet-explorer"):
    """A Plotly figure as `gr.Plot` sends it, with the modebar's config (Gradio passes a
    figure's "config" on to Plotly; a bare figure has none, so its camera would save PNG
    named "newplot"). None and values already sent pass through."""
    if fig is None or isinstance(fig, PlotData) or not hasattr(fig, "to_json"):
        return fig
    config = {**MODEBAR, "toImageButtonOptions": {**MODEBAR["toImageButtonOptions"], "filename": filename}}
    return PlotData(type="plotly", plot=json.dumps({**json.loads(fig.to_json()), "config": config}))


@contextlib.contextmanager
def no_stub():
    """Gradio writes a typing stub (.pyi) beside the module of every Component subclass it
    sees defined; a subclass that keeps its base's arguments needs none (and a stub in ui/
    would hide the module from type checkers and ruff): define it inside this block."""
    write, component_meta.create_or_modify_pyi = component_meta.create_or_modify_pyi, lambda *args: None
    try:
        yield
    finally:
        component_meta.create_or_modify_pyi = write


with no_stub():

    class ExportPlot(gr.Plot):
        """`gr.Plot` whose every figure carries `MODEBAR` (see `export_plot`): handlers, timers
        and updates return bare figures, and none can forget the config."""

        is_template = True  # the browser draws it with gr.Plot's own component

        def postprocess(self, value):
            # named by elem_id: Gradio rebuilds the block from gr.Plot's arguments on an update
            return super().postprocess(plot_value(value, plot_filename(self.elem_id)))

    class WholeNumber(gr.Number):
        """A whole-number box (`gr.Number`, precision 0) whose API value reaches the handler
        as sent when Gradio cannot round it (text, a list, a file): Gradio's rounding would
        fail with "Could not preprocess input component at index 0", a traceback in the log;
        the handler's named bound (`explorer.core.specs.whole_number`) refuses it in its own words."""

        is_template = True  # the browser draws it with gr.Number's own component

        def preprocess(self, payload):
            try:
                return super().preprocess(payload)
            except (TypeError, ValueError, OverflowError):
                return payload


def plot_filename(elem_id) -> str:
    """The name a plot's SVG and PNG are saved under (no extension)."""
    return f"resnet-explorer-{elem_id}" if elem_id else "resnet-explorer"


def png_js(elem_id: str, filename: str) -> str:
    """The click of a plot's PNG button: the figure on screen, as Plotly draws it."""
    options = json.dumps({"format": "png", "filename": filename, "scale": PNG_SCALE})
    return (f"() => {{ const plot = document.querySelector('#{elem_id} .js-plotly-plot'); "
            f"if (plot && window.Plotly) window.Plotly.downloadImage(plot, {options}); }}")


def export_plot(label: str, elem_id: str, **kwargs) -> ExportPlot:
    """The plot of every chart of the app: the modebar's camera saves SVG, the PNG button
    beside the label saves PNG, both named resnet-explorer-<elem_id>.

    Args:
        label: the plot's label.
        elem_id: its element id (the PNG button finds the figure by it).
        **kwargs: passed on to `gr.Plot` (visible, value, ...).
    """
    png = gr.Button("PNG", size="sm", elem_classes=["plot-png"])
    plot = ExportPlot(label=label, elem_id=elem_id, buttons=[png], **kwargs)
    png.click(None, js=png_js(elem_id, plot_filename(elem_id)), api_name=False)
    return plot


@functools.cache
def _checked_model(model):
    """`model` (Gradio's FileData, EditorData...) whose validation failure is a `gr.Error` in
    plain words: an API call that sends text or a list where a file belongs would otherwise get
    pydantic's "1 validation error for FileData" and leave a traceback in the log. Same name,
    same schema: clients see the API they saw before."""

    def model_validate(cls, obj, *args, **kwargs):
        try:
            return super(checked, cls).model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError:
            raise gr.Error(f"expected an uploaded file here (gradio_client: handle_file(path)), got "
                           f"{type(obj).__name__} {str(obj)[:40]!r}", duration=None) from None

    checked = type(model.__name__, (model,), {"model_validate": classmethod(model_validate),
                                              "__module__": model.__module__, "__doc__": model.__doc__})
    return checked


def checked_upload(component):
    """`component` (an upload input) with its API payload checked in plain words (see
    `_checked_model`); returns it."""
    component.data_model = _checked_model(component.data_model)
    return component
