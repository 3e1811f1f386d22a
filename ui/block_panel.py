"""The Architecture tab's block panel: one block chosen (in the selector, or by a click on it
in the graph), its numbers and every overlay value measured for it so far, its layers drawn
on the graph, its residual branch deleted."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.compute.engine import engine
from explorer.core import costs
from explorer.core.numbers import magnitude
from explorer.core.plans import plan
from explorer.core.specs import ResNetSpec, make_spec
from explorer.data.cifar import resolve_source
from explorer.nets import import_run
from explorer.nets.models import checkpoint_spec
from explorer.studies import deletion, overlays

from .common import WholeNumber, checkpoint_path, user_errors

# gr.Plot has no click event, but Plotly tells listeners on the figure's div of a click on a
# point (customdata: the block's name, see explorer/views/graph_figure.py). Gradio makes a new div
# whenever it mounts the plot again, so the page looks for unwired plots every second; a click
# hands the name to the hidden button's event (its js returns the value the handler gets).
CLICK_JS = """() => {
  if (window.explorerBlockClicks) return;
  const wire = () => {
    for (const plot of document.querySelectorAll('#arch-plot .js-plotly-plot, #arch-twin .js-plotly-plot')) {
      if (plot.explorerClicks || typeof plot.on !== 'function') continue;
      plot.explorerClicks = true;
      plot.on('plotly_click', (event) => {
        const name = event && event.points && event.points.length ? event.points[0].customdata : '';
        const button = document.querySelector('#arch-block-clicked');
        if (!name || !button) return;
        window.explorerClickedBlock = name;
        button.click();
      });
    }
  };
  wire();
  window.explorerBlockClicks = setInterval(wire, 1000);
}"""
# The chosen block ringed on the graph: each marker's d3 datum carries its trace's customdata
# (the block's name) as `.data`; the class outlives hovers, and a redrawn figure calls this again
# (after Plotly has drawn it, hence the delay).
HIGHLIGHT_JS = """(name) => { setTimeout(() => {
  for (const point of document.querySelectorAll('#arch-plot path.point, #arch-twin path.point')) {
    point.classList.toggle('explorer-chosen', !!name && !!point.__data__ && point.__data__.data === name);
  }
}, 400); return name; }"""
# every input, the first replaced
CLICKED_JS = "(current, ...rest) => [window.explorerClickedBlock || current, ...rest]"


def drawn_spec(seen, depth, version, family, residual, shortcut) -> ResNetSpec:
    """The net on screen: the one an overlay drew (`seen["drawn"]`), else the controls'."""
    drawn = (seen or {}).get("drawn")
    return ResNetSpec.from_config(drawn) if drawn else make_spec(depth, version, family, residual, shortcut)


@user_errors
def choose_block(name, depth, version, family, residual, shortcut, seen=None):
    """A block clicked on the graph, for the selector: one of the drawn net's blocks (a click
    on the twin chooses the block of the same name)."""
    spec = drawn_spec(seen, depth, version, family, residual, shortcut)
    names = [b.name for b in plan(spec).blocks]
    if name not in names:
        raise ValueError(f"{spec.name} has no block {str(name)[:40]!r}: click a block of the graph")
    return gr.Dropdown(choices=names, value=name)


@user_errors
def block_info(block, depth, version, family, residual, shortcut, seen=None, checkpoint=None,
               request: gr.Request = None):
    """A block's numbers (Markdown): shapes, parameters, multiply-adds, whether it can be
    deleted (and on which checkpoint), the names its layers have in an imported file, and every
    overlay value measured for it so far (`seen`, see the tab's `_measured`)."""
    seen = seen or {}
    spec = drawn_spec(seen, depth, version, family, residual, shortcut)
    found = [b for b in plan(spec).blocks if b.name == block]
    if not found:
        return f"{spec.name} has no block {block!r}."
    b, rows = found[0], costs.block_layers(found[0], plan(spec))
    lines = [(f"**{block}** of {spec.name}: {'x'.join(map(str, b.in_shape))} → "
              f"{'x'.join(map(str, b.out_shape))}, {sum(r.params for r in rows):,} parameters, "
              f"{sum(r.flops for r in rows):,} multiply-adds, shortcut: {b.shortcut or 'none (plain)'}.")]
    try:
        deletion.check_block(spec, block)
        lines.append(f"Its residual branch can be deleted: **Delete this block** measures {checkpoint} "
                     "without it." if checkpoint else
                     f"Its residual branch can be deleted on a trained {spec.name}: none is shipped or "
                     "chosen (train one on the Train tab, or draw a net that has one, such as ResNet-56 v1).")
    except ValueError as err:
        lines.append(str(err) + ".")
    if str(checkpoint or "").startswith("import:"):
        lines.append(_in_the_file(checkpoint, spec, block, request))
    for kind, m in seen.get("kinds", {}).items():
        if m["model"] == spec.name and block in m["values"]:
            twin = f"; {m['twin_label']}: {_number(m['twin'].get(block))}" if m["twin"] else ""
            lines.append(f"- {kind} ({m['quantity']}): {_number(m['values'][block], m['percent'])}{twin}")
    return "\n".join(lines)


def _in_the_file(checkpoint, spec, block, request) -> str:
    """The block's layers as the imported file names them, where the import holds this net."""
    try:
        path = checkpoint_path(checkpoint, request)
        held = checkpoint_spec(path)
        if held.to_config() != spec.to_config():
            return f"{checkpoint} holds {held.name}, not the net drawn."
    except ValueError as err:
        return str(err) + "."
    names = import_run.file_layers(path, block)
    return (f"In your file its layers are {', '.join(f'`{name}`' for name in names)}." if names else
            "Your file is a checkpoint of this app: its layers have these names.")


def _number(value, percent=False) -> str:
    return "n/a" if value is None else f"{value:.1%}" if percent else magnitude(value)


@user_errors
def delete_block(checkpoint, block, samples=overlays.OVERLAY_SAMPLES, request: gr.Request = None):
    """A checkpoint's accuracy on the first test images with and without one block's residual
    branch (the lesion study's numbers for the same images), with the lesion study's median
    deletion where it has been measured; returns {"block", "accuracy_with", "accuracy_without", ...}.

    Args:
        checkpoint: a shipped checkpoint's name or `job:<id>` of this session.
        block: the block's name, "stage2_block3"; a plain block that changes shape cannot be deleted.
        samples: test images (the first ones).
    """
    path = checkpoint_path(checkpoint, request)
    # on the worker that ran this checkpoint's lesion overlay, whose study it reads beside
    return engine().run(deletion.delete_block, path, block, samples, resolve_source()[0],
                        home=("checkpoint", str(path)))


def deletion_text(result) -> str:
    """A deletion's answer in words (Markdown)."""
    if not result:
        return ""
    cost = result["cost"] * 100
    said = f"{cost:.1f} points lost" if cost >= 0 else f"{-cost:.1f} points gained"
    text = (f"**{result['model']} without {result['block']}'s residual branch**: "
            f"{result['accuracy_without']:.1%} of {result['n']:,} test images right instead of "
            f"{result['accuracy_with']:.1%} ({said}).")
    if "lesion_median_cost" in result:
        return text + (f" A median deletion costs {result['lesion_median_cost'] * 100:.1f} points "
                       "(the lesion overlay's study, same images).")
    return text + " Apply the lesion overlay with this checkpoint to see it beside the median deletion."


@dataclasses.dataclass
class BlockPanel:
    """The block panel's components."""

    block: gr.Dropdown  # the block chosen (a click on the graph sets it)
    clicked: gr.Button  # hidden: the click script presses it
    info: gr.Markdown  # the block's layers and numbers
    expand: gr.Button  # its layers on the graph
    look: gr.Button  # the Look inside tab on this block (wired by `ui.inside.wire_from_architecture`)
    samples: gr.Number  # test images of its deletion
    delete: gr.Button
    deleted: gr.Markdown  # what its deletion cost


def build_panel(checkpoint=None) -> BlockPanel:
    """The panel's layout: the selector (a click on the graph sets it), the block's numbers,
    its expansion on the graph, its deletion (on `checkpoint`, the one chosen at first)."""
    names = [b.name for b in plan(make_spec(56, 1)).blocks]  # the net the page opens on
    block = gr.Dropdown(names, value=names[0], label="Block", info="or click a block in the graph",
                        elem_id="arch-block", allow_custom_value=True)
    clicked = gr.Button("chosen on the graph", elem_id="arch-block-clicked",
                        elem_classes=["explorer-trigger"])
    info = gr.Markdown(block_info(names[0], 56, 1, "cifar", True, "projection", None, checkpoint),
                       elem_id="arch-block-info")
    with gr.Row():
        expand = gr.Button("Show this block's layers in the graph", size="sm", elem_id="arch-expand-block")
        look = gr.Button("Look inside this block ▶", size="sm", elem_id="arch-look-inside")
    samples = WholeNumber(overlays.OVERLAY_SAMPLES, precision=0, label="Test images", elem_id="arch-samples")
    delete = gr.Button("Delete this block", variant="stop", elem_id="arch-delete")
    deleted = gr.Markdown(elem_id="arch-deleted")
    return BlockPanel(block, clicked, info, expand, look, samples, delete, deleted)
