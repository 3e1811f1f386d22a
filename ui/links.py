"""Links that rebuild a view (`explorer.views.links`): the page reads its URL on load, the address
bar follows the page (replaced, not pushed, so Back still leaves the app), "Copy link" copies
it, and `&hide=controls` / `&tab_only=1` are the teacher mode."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.shipped import pretrained
from explorer.views import links

from .architecture import build_architecture
from .common import user_errors
from .gradients import FlowChart, FlowControls, gradient_flow, show_file
from .insight import CheckpointPair, LesionControls, lesion
from .playground import link_query as playground_query
from .train import degradation

# the address bar follows the page; teacher mode hides what the link asks to hide
# (a teacher's `hide` and `tab_only` stay in it: copying the address keeps teacher mode)
FOLLOW_JS = """(query) => { if (query) { const now = new URLSearchParams(location.search);
  const next = new URLSearchParams(query);
  for (const key of ['hide', 'tab_only']) if (now.has(key) && !next.has(key)) next.set(key, now.get(key));
  history.replaceState(null, '', '?' + next.toString()); } return []; }"""
TEACHER_JS = ("""() => { const params = new URLSearchParams(location.search);
  if (params.get('hide') === 'controls') document.body.classList.add('explorer-hide-controls');
  if (['1', 'true', 'yes'].includes(params.get('tab_only')))"""
              " document.body.classList.add('explorer-tab-only'); }")
# what a link sets, in `wire`'s output order: the tab (selected and remembered), the
# Architecture and Gradient flow inputs, Classify's checkpoint and the Insight lab's pair
LINKED_VALUES = 2 + len(links.ARCHITECTURE_DEFAULTS) + len(links.GRADIENT_DEFAULTS) + 3
# a section a link opened (`show=degradation`) scrolled into view: it is below the tab's controls
SCROLL_JS = """(show) => { if (show) setTimeout(() => document.querySelector('#train-degradation-plot')
  ?.scrollIntoView({block: 'center'}), 300); return []; }"""
COPY_JS = "() => { navigator.clipboard && navigator.clipboard.writeText(location.href); return []; }"


@dataclasses.dataclass
class Linkable:
    """The components a link sets, tab by tab."""

    tabs: gr.Tabs
    tab_items: dict  # tab id -> gr.Tab
    architecture: list  # depth, version, family, residual, shortcut, expand, twin (`NetControls.all()`)
    architecture_outputs: list  # drawn on every load, from the link's inputs
    gradients: FlowControls  # measured after a link to the Gradient flow tab opens
    gradient_outputs: FlowChart
    checkpoint: gr.Dropdown  # Classify's
    pair: CheckpointPair  # the Insight lab's
    lesion: LesionControls  # drawn at once by a link to the Insight lab
    notice: gr.Markdown  # what the link asked for that was ignored, at the top of the page
    degradation: tuple = ()  # the Train tab's degradation view: its accordion, chart and note
    inside: tuple = ()  # the Look inside tab's checkpoint, block, test image (`ui.inside.link_view`)
    playground: tuple = ()  # the Playground tab's controls (`ui.playground.link_view`), after inside's

    def fields(self) -> list:
        """What a link sets after the tab, in `open_link`'s order (and `current_link`'s)."""
        return [*self.architecture, *self.gradients.inputs(), self.checkpoint, self.pair.first,
                self.pair.second]


def notice() -> gr.Markdown:
    """The line that says what a link asked for that was ignored (placed at the page's top)."""
    return gr.Markdown(visible=False, elem_id="link-notice")


def _shipped() -> list[str]:
    try:
        return [entry["name"] for entry in pretrained.manifest()]
    except ValueError:  # a damaged manifest: the link's checkpoints are ignored, with the reason
        return []


def open_link(request: gr.Request):
    """Page load: the view the URL asks for, and a line on what it asked for that was ignored."""
    params = dict(getattr(request, "query_params", None) or {})
    keep = gr.skip()
    if not params:  # a plain visit: leave the page as the visitor may already be changing it
        return [keep] * LINKED_VALUES + [gr.Markdown(visible=False), None]
    view = links.parse(params, _shipped())
    arch, grad = view.architecture, view.gradients
    return [gr.Tabs(selected=view.tab), view.tab,
            arch["depth"], arch["version"], arch["family"], arch["residual"], arch["shortcut"],
            arch["expand"], arch["twin"], grad["depth"], grad["version"], grad["batch"], grad["seed"],
            grad["view"], view.checkpoint or keep, view.checkpoint or keep, view.compare or keep,
            gr.Markdown(view.notice(), visible=bool(view.notice())), view.show]


def measure_if_linked(tab, depth, version, batch, seed, view, progress=gr.Progress()):
    """After a link to the Gradient flow tab opens: its chart, measured from the link's inputs."""
    if tab != "gradients":
        return gr.skip(), gr.skip(), gr.skip()
    return gradient_flow(depth, version, batch, seed, view, progress=progress)


def lesion_if_linked(tab, checkpoint, samples, compare, request: gr.Request, progress=gr.Progress()):
    """After a link to the Insight lab opens: its lesion chart, from the link's checkpoints (a
    lecture's view is on screen at once, not after a click)."""
    if tab != "insight":
        return gr.skip(), gr.skip()
    return lesion(checkpoint, samples, compare, request, progress=progress)


def degradation_if_linked(show):
    """After a link with `show=degradation` opens: the Train tab's degradation view opened and
    drawn (the tour's first step links there)."""
    if show != "degradation":
        return gr.skip(), gr.skip(), gr.skip()
    return gr.Accordion(open=True), *degradation()


@user_errors
def current_link(tab, *values):
    """The query string of the view on screen (the address bar's, minus the page)."""
    values = iter(values)  # `Linkable.fields()`: the Architecture's, the Gradient flow's, the checkpoints
    # the names first: zip stops at their end without taking the next tab's value
    arch, grad = dict(zip(links.ARCHITECTURE_DEFAULTS, values)), dict(zip(links.GRADIENT_DEFAULTS, values))
    checkpoint, first, second = next(values), next(values), next(values)
    inside = dict(zip(("checkpoint", "block", "image"), values))  # the Look inside tab's, if wired
    if tab == "architecture":
        return links.query(tab, arch, links.ARCHITECTURE_DEFAULTS)
    if tab == "gradients":
        return links.query(tab, grad, links.GRADIENT_DEFAULTS)
    if tab == "classify":
        return links.query(tab, {"checkpoint": checkpoint})
    if tab == "insight":
        return links.query(tab, {"checkpoint": first, "compare": second})
    if tab == "inside":
        return links.query(tab, inside)
    if tab == "playground":
        return playground_query(*values)  # what is left: the Playground tab's controls, if wired
    return links.query(tab, {})


def wire(demo: gr.Blocks, page: Linkable):
    """Opens the URL's view on load and keeps the address bar on the view on screen."""
    tab = gr.State("architecture")
    with gr.Row():
        link = gr.Textbox(visible=False)
        copy = gr.Button("Copy link to this view", size="sm", elem_id="copy-link", scale=0, min_width=180)
    fields = page.fields()
    show = gr.State(None)  # the section a link asked to open (`links.View.show`)
    opened = demo.load(open_link, None, [page.tabs, tab, *fields, page.notice, show], api_name=False,
                       js=TEACHER_JS).then(build_architecture, page.architecture, page.architecture_outputs,
                                           api_name=False)
    opened.then(measure_if_linked, [tab, *page.gradients.inputs()], page.gradient_outputs.outputs(),
                api_name=False, concurrency_limit=1, concurrency_id="probes").success(
        show_file, None, page.gradient_outputs.numbers, api_name=False)
    opened.then(lesion_if_linked, [tab, *page.lesion.inputs()], page.lesion.outputs(), api_name=False,
                concurrency_limit=1, concurrency_id="probes")
    if page.degradation:
        opened.then(degradation_if_linked, show, list(page.degradation), api_name=False).then(
            None, show, None, js=SCROLL_JS, api_name=False)
    for name, item in page.tab_items.items():
        item.select(lambda name=name: name, None, tab, api_name=False)
    followed = [*fields, *page.inside, *page.playground]
    # the newest view wins: a change while the link of the last is computed is not dropped
    gr.on([tab.change, *[field.change for field in followed]], current_link, [tab, *followed], link,
          api_name=False, show_progress="hidden", trigger_mode="always_last")
    link.change(None, link, None, js=FOLLOW_JS, api_name=False)
    copy.click(None, None, None, js=COPY_JS, api_name=False).then(
        lambda: gr.Info("Link copied: it opens this tab with these settings"), None, None, api_name=False)
