"""Links that rebuild a view: the page's state as URL query parameters, and back.

`/?tab=gradients&depth=110&version=1&seed=3` opens the Gradient flow tab on ResNet-110 v1 with
seed 3 and measures it; `&hide=controls` shows the charts without their input panel and
`&tab_only=1` hides the other tabs (teacher mode, as TensorFlow Playground's `_hide`
switches). A link holds inputs only, never results: opening it recomputes the view, so it
works on any server with the same code and checkpoints.

Every parameter is read with the same checks as the request it feeds (`specs.make_spec`,
`probes.check_request`, ...). A bad or foreign one (`depth=abc`, `depth=21`, `tab=nope`, an
unknown checkpoint, a job of another browser) is dropped with a reason, its default kept:
a link never fails to open.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlencode

from explorer.core.checks import one_of
from explorer.core.plans import plan
from explorer.core.playground_settings import PlaygroundSettings, read_settings
from explorer.core.specs import FAMILIES, MAX_SEED, SHORTCUTS, as_bool, make_spec, whole_number
from explorer.shipped.stored import shipped_net

TABS = ("architecture", "train", "playground", "gradients", "classify", "inside", "insight", "paths", "tour")
ARCHITECTURE_DEFAULTS = {"depth": 56, "version": 1, "family": "cifar", "residual": True,
                         "shortcut": "projection", "expand": "none", "twin": False}
GRADIENT_DEFAULTS = {"depth": 110, "version": 1, "batch": 64, "seed": 0, "view": "kernels"}
MAX_PARAMETER_LENGTH = 200  # longer values are not read at all


SECTIONS = ("degradation",)  # `show=`: the Train tab's degradation view, opened and drawn
LAST_TEST_IMAGE = 9_999  # `image=`: a test image by index (CIFAR-10 has 10,000; a smaller set says so)


@dataclasses.dataclass
class View:
    """What a link asks for, every value checked (defaults where it asked for nothing valid)."""

    tab: str = "architecture"  # the tab to open
    architecture: dict = dataclasses.field(default_factory=lambda: dict(ARCHITECTURE_DEFAULTS))
    gradients: dict = dataclasses.field(default_factory=lambda: dict(GRADIENT_DEFAULTS))
    checkpoint: str | None = None  # Classify's and the Insight lab's first checkpoint (shipped)
    compare: str | None = None  # the Insight lab's second checkpoint (shipped)
    hide_controls: bool = False  # teacher mode: charts and readings without the input panels
    tab_only: bool = False  # teacher mode: the other tabs hidden
    show: str | None = None  # a section of the tab opened and drawn: "degradation" (Train)
    block: str | None = None  # the Look inside tab's block ("stage2_block3")
    image: int | None = None  # the Look inside tab's test image, by index (an upload cannot travel)
    playground: dict | None = None  # the Playground tab's settings (`PlaygroundSettings.to_dict()`)
    ignored: list = dataclasses.field(default_factory=list)  # "name=value (why)" per dropped parameter

    def notice(self) -> str:
        """One line for the page saying what the link asked for that was ignored, or ""."""
        if not self.ignored:
            return ""
        return ("This link's " + "; ".join(self.ignored)
                + " could not be used: the defaults are shown instead.")


def _architecture(params: dict, ignored: list) -> dict:
    values = dict(ARCHITECTURE_DEFAULTS)
    readers = {"depth": lambda v: whole_number(v, "depth", 1, 2000),
               "version": lambda v: whole_number(v, "version", 1, 2),
               "family": lambda v: one_of(v, FAMILIES, "family"),
               "residual": lambda v: as_bool(v, "residual"),
               "shortcut": lambda v: one_of(v, SHORTCUTS, "shortcut"), "twin": lambda v: as_bool(v, "twin"),
               "expand": _expand}
    _read(params, readers, values, ignored)
    try:
        spec = make_spec(values["depth"], values["version"], values["family"], values["residual"],
                         values["shortcut"])
    except ValueError as err:  # a depth the version or family has no net for
        ignored.append(f"depth={params.get('depth', values['depth'])} ({err})")
        values.update(depth=ARCHITECTURE_DEFAULTS["depth"] if values["family"] == "cifar" else 50, version=1)
        spec = make_spec(values["depth"], values["version"], values["family"], values["residual"],
                         values["shortcut"])
    blocks = plan(spec).blocks
    if re.fullmatch(r"stage\d", values["expand"]) and int(values["expand"][5:]) > blocks[-1].stage:
        ignored.append(f"expand={values['expand']} ({spec.name} has no such stage)")
        values["expand"] = "none"
    elif "_" in values["expand"] and values["expand"] not in {block.name for block in blocks}:
        ignored.append(f"expand={values['expand']} ({spec.name} has no such block)")
        values["expand"] = "none"
    return values


def _expand(value) -> str:
    """An expansion a link may ask for: none, all, stage1..stage4 or a block's name (whether
    the net has it is checked once the net is known)."""
    if isinstance(value, str) and re.fullmatch(r"stage[1-4]_block[1-9]\d{0,2}", value):
        return value
    views = ("none", "all", "stage1", "stage2", "stage3", "stage4")
    return one_of(value, views, "expand", f"{', '.join(views)} or a block's name (stage2_block3)")


def _gradients(params: dict, ignored: list) -> dict:
    from explorer.studies.probes import (  # TensorFlow only when a gradient link is read
        MAX_PROBE_BATCH,
        check_request,
    )

    values = dict(GRADIENT_DEFAULTS)
    readers = {"depth": lambda v: whole_number(v, "depth", 1, 2000),
               "version": lambda v: whole_number(v, "version", 1, 2),
               "batch": lambda v: whole_number(v, "batch size", 1, MAX_PROBE_BATCH),
               "seed": lambda v: whole_number(v, "seed", 0, MAX_SEED),
               "view": lambda v: one_of(v, ("kernels", "blocks"), "view")}
    _read(params, readers, values, ignored)
    try:
        check_request(values["depth"], values["version"], values["batch"], values["seed"])
    except ValueError as err:
        ignored.append(f"depth={params.get('depth', values['depth'])} ({err})")
        values.update(depth=GRADIENT_DEFAULTS["depth"], version=GRADIENT_DEFAULTS["version"])
    return values


def _read(params: dict, readers: dict, values: dict, ignored: list) -> None:
    for name, read in readers.items():
        if name in params:
            try:
                values[name] = read(params[name])
            except ValueError as err:
                ignored.append(f"{name}={params[name][:40]} ({err})")


def _checkpoint(params: dict, name: str, shipped: list[str], ignored: list) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if value in shipped:
        return value
    why = ("a job belongs to the browser that trained it" if value.startswith("job:")
           else "an imported model belongs to the page that imported it" if value.startswith("import:")
           else "no shipped checkpoint has that name")
    ignored.append(f"{name}={value[:40]} ({why})")
    return None


def _inside(params: dict, checkpoint: str | None, ignored: list) -> tuple[str | None, int | None]:
    """The Look inside tab's block (a name; one the link's checkpoint's net has, where that is
    known) and test image index."""
    values = {"block": None, "image": None}
    _read(params, {"block": _block, "image": lambda v: whole_number(v, "image", 0, LAST_TEST_IMAGE)},
          values, ignored)
    try:
        net = shipped_net(checkpoint) if checkpoint and values["block"] else None
    except ValueError:  # a damaged manifest: the tab says so when it loads the checkpoint
        net = None
    if net is not None and values["block"] not in {block.name for block in plan(net).blocks}:
        ignored.append(f"block={values['block']} ({checkpoint} has no such block)")
        values["block"] = None
    return values["block"], values["image"]


def _playground(params: dict, ignored: list) -> dict:
    """The Playground tab's settings (`?tab=playground&data=spiral&blocks=32&...`, the names of
    `PlaygroundSettings`): each read on its own, then together (a batch larger than the
    training points is dropped with the reason; the batch is then the default one, or all the
    training points where they are fewer)."""
    values = {}
    for name in PlaygroundSettings.__dataclass_fields__:
        if name == "batch_size" and name in params:
            values[name] = params[name]  # read with the points it is checked against, below
        elif name in params:
            try:
                # a batch of 1: each value against its own bound, not yet against the batch
                values[name] = getattr(read_settings(batch_size=1, **{name: params[name]}), name)
            except ValueError as err:
                ignored.append(f"{name}={params[name][:40]} ({err})")
    try:
        return read_settings(**values).to_dict()
    except ValueError as err:  # only the batch size is left to refuse
        if "batch_size" in params:
            ignored.append(f"batch_size={params['batch_size'][:40]} ({err})")
        values["batch_size"] = 1
        settings = read_settings(**values)  # then the largest batch the training points allow
        batch = min(PlaygroundSettings.batch_size, settings.train_points)
        return settings.replace(batch_size=batch).to_dict()


def _block(value) -> str:
    if isinstance(value, str) and re.fullmatch(r"stage[1-4]_block[1-9]\d{0,2}", value):
        return value
    raise ValueError("a block's name, such as stage2_block3")


def parse(params, shipped: list[str]) -> View:
    """The view a link's query parameters ask for.

    Args:
        params: the query parameters (a mapping of name to text, e.g. `request.query_params`).
        shipped: the names of the shipped checkpoints (the only ones a link may name).

    Returns:
        A `View`; what could not be used is in `View.ignored`, never raised.
    """
    params = {str(key): str(value) for key, value in dict(params or {}).items()}
    ignored = [f"{name} (longer than {MAX_PARAMETER_LENGTH} characters)"
               for name, value in params.items() if len(value) > MAX_PARAMETER_LENGTH]
    params = {name: value for name, value in params.items() if len(value) <= MAX_PARAMETER_LENGTH}
    view = View(ignored=ignored)
    tab = params.get("tab", "architecture")
    if tab in TABS:
        view.tab = tab
    else:
        ignored.append(f"tab={tab[:40]} (tabs: {', '.join(TABS)})")
    target = _gradients if view.tab == "gradients" else _architecture
    setattr(view, "gradients" if view.tab == "gradients" else "architecture", target(params, ignored))
    view.checkpoint = _checkpoint(params, "checkpoint", shipped, ignored)
    view.compare = _checkpoint(params, "compare", shipped, ignored)
    if "show" in params:
        if view.tab == "train" and params["show"] in SECTIONS:
            view.show = params["show"]
        else:
            ignored.append(f"show={params['show'][:40]} (the Train tab shows: {', '.join(SECTIONS)})")
    if view.tab == "playground":
        view.playground = _playground(params, ignored)
    if view.tab == "inside":
        view.block, view.image = _inside(params, view.checkpoint, ignored)
    view.hide_controls = params.get("hide") == "controls"
    view.tab_only = params.get("tab_only") in ("1", "true", "yes")
    return view


def query(tab: str, values: dict, defaults: dict | None = None) -> str:
    """The query string of a view: its tab and the values that differ from `defaults`, in a
    fixed order (so the same view always has the same link)."""
    defaults = defaults or {}
    shown = {name: value for name, value in values.items()
             if value is not None and defaults.get(name) != value}
    encoded = {name: str(value).lower() if isinstance(value, bool) else value
               for name, value in shown.items()}
    return urlencode({"tab": tab, **encoded})


def playground_query(settings: dict) -> str:
    """The query string of the Playground tab's settings (`PlaygroundSettings.to_dict()`): the
    values that differ from the defaults, the features as "x,y,xy"."""
    def flat(values: dict) -> dict:
        return {name: ",".join(value) if name == "features" else value for name, value in values.items()}

    return query("playground", flat(settings), flat(PlaygroundSettings().to_dict()))
