"""ResNet Explorer: the Gradio page, assembled from one module a tab (`ui/`); the work is in
`explorer/`.

Run `python app.py` (http://127.0.0.1:7860). Set EXPLORER_HOST=0.0.0.0 to serve beyond this
machine (Docker and Hugging Face Spaces do this for you). Spaces and `gradio app.py` look for
the module-level `demo`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from explorer.core.runtime import thread_safe_tensorflow

thread_safe_tensorflow()  # before TensorFlow's import: oneDNN off in this process (heap corruption)

import gradio as gr  # after thread_safe_tensorflow, as is every import that may load TensorFlow

from explorer.compute.engine import EngineError, engine  # after thread_safe_tensorflow
from explorer.nets.import_files import MAX_IMPORT_BYTES  # the upload bound: a model file (images: their own)
from ui import (
    architecture,
    classify,
    glossary,
    gradients,
    inside,
    insight,
    links,
    paths,
    playground,
    session,
    start,
    tour,
    train,
)
from ui.common import refresh_checkpoints, refresh_compare

STYLE = Path(__file__).resolve().parent / "ui" / "style.css"  # the phone layout
INTRO = """# ResNet Explorer
See why residual networks train when plain deep networks don't: pick a network, look inside it,
train it, and compare how the gradient reaches its first layers with and without shortcuts."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the app serves, from the environment (the job limits are read by `ui.session`)."""

    host: str  # 127.0.0.1 unless asked: EXPLORER_HOST or GRADIO_SERVER_NAME (0.0.0.0 in Docker, Spaces)
    port: int  # EXPLORER_PORT or GRADIO_SERVER_PORT, default 7860
    queue_size: int  # EXPLORER_QUEUE_SIZE: requests waiting beyond it get "queue is full"

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ.get
        return cls(host=env("EXPLORER_HOST") or env("GRADIO_SERVER_NAME") or "127.0.0.1",
                   port=int(env("EXPLORER_PORT", env("GRADIO_SERVER_PORT", "7860"))),
                   queue_size=int(env("EXPLORER_QUEUE_SIZE", "64")))


def build_demo() -> gr.Blocks:
    """The page: the tabs, the view its URL asks for, and the browser's owner token."""
    # Uploads and returned files older than a day leave Gradio's cache (checked hourly).
    with gr.Blocks(title="ResNet Explorer", delete_cache=(3600, 86400)) as demo:
        gr.Markdown(INTRO)
        link_notice = links.notice()  # at the top: what a link asked for that was ignored
        start_path = start.build()  # three steps for a first visit, above the tabs
        with gr.Tabs() as tabs:
            with gr.Tab("Architecture", id="architecture") as architecture_page:
                arch_inputs, arch_outputs, arch_look = architecture.build()
            with gr.Tab("Train", id="train") as train_page:
                train_degradation = train.build()
            with gr.Tab("Playground", id="playground") as playground_page:
                playground_view = playground.build()
            with gr.Tab("Gradient flow", id="gradients") as gradients_page:
                grad_inputs, grad_outputs = gradients.build()
            with gr.Tab("Classify", id="classify") as classify_page:
                classify_checkpoint, classified_image = classify.build()
            with gr.Tab("Look inside", id="inside") as inside_page:
                inside_view = inside.build()
            with gr.Tab("Insight lab", id="insight") as insight_page:
                insight_pair, insight_lesion = insight.build()
            with gr.Tab("Paths & signals", id="paths") as paths_page:
                paths_checkpoint = paths.build()
            with gr.Tab("Tour", id="tour") as tour_page:
                tour.build()
        # opening a tab lists the models this browser trained since the page loaded
        classify_page.select(refresh_checkpoints, classify_checkpoint, classify_checkpoint, api_name=False)
        insight_page.select(refresh_checkpoints, insight_pair.first, insight_pair.first, api_name=False)
        insight_page.select(refresh_compare, insight_pair.second, insight_pair.second, api_name=False)
        paths_page.select(refresh_checkpoints, paths_checkpoint, paths_checkpoint, api_name=False)
        gradients.on_open(gradients_page, grad_inputs, grad_outputs)
        inside.on_open(inside_page, classify_checkpoint, classified_image, inside_view)  # follows Classify
        playground.on_open(playground_page)  # the default pair compiled ahead again, if it was taken
        start.wire(start_path, tabs, arch_inputs, arch_outputs, grad_inputs, grad_outputs)
        links.wire(demo, links.Linkable(
            tabs, {"architecture": architecture_page, "train": train_page, "playground": playground_page,
                   "gradients": gradients_page,
                   "classify": classify_page, "inside": inside_page, "insight": insight_page,
                   "paths": paths_page, "tour": tour_page},
            arch_inputs, arch_outputs, grad_inputs, grad_outputs, classify_checkpoint, insight_pair,
            insight_lesion, link_notice, train_degradation, inside=tuple(inside_view.link_fields()),
            playground=tuple(playground_view.link_fields())))
        inside.wire_link(demo, inside_view)
        inside.wire_from_architecture(arch_look, tabs, inside_view)  # a block of the graph, looked inside
        playground.wire_link(demo, playground_view)
        glossary.build()  # at the foot: the words the readings use, linked from their first mention
        demo.load(None, js=glossary.GLOSSARY_JS, api_name=False)
        owner = session.owner_state()
        demo.load(session.claim_owner, owner, owner, api_name=False)
        demo.unload(session.end_session)  # the models a page imported go with it
    return demo


demo = build_demo()


def main():
    settings = Settings.from_environment()
    try:
        engine()  # the engine: a local Dask cluster, or EXPLORER_SCHEDULER's
    except EngineError as err:
        raise SystemExit(str(err)) from None  # one clear line, no traceback
    warming = gradients.warm_default_view()  # the Gradient flow tab's first view, measured ahead
    session.jobs()  # the job manager asks a training worker to build the default job ahead
    # the training workers start once that view is measured (their imports would slow it), or
    # with the first job, whichever comes first
    # and then the Playground's default pair is compiled ahead (its first Start draws at once)
    threading.Thread(target=lambda: (warming.join(), engine().start_trainers(), playground.warm_default()),
                     daemon=True).start()
    demo.queue(default_concurrency_limit=2, max_size=settings.queue_size).launch(
        server_name=settings.host, server_port=settings.port, max_file_size=MAX_IMPORT_BYTES, show_error=True,
        css_paths=[STYLE])


if __name__ == "__main__":
    main()
