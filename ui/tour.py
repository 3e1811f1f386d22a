"""The Tour tab: eight steps through what residual networks fix. Each asks first ("make a
prediction"), then reveals the measurement (`explorer.views.tour`) and links to the view that
shows it."""

from __future__ import annotations

import gradio as gr

from explorer.compute.engine import engine
from explorer.views import tour

from . import session
from .common import progress_callback, user_errors
from .jobs_view import latest_race, race_inputs


def reveal(index: int, answer, progress=gr.Progress(), request: gr.Request = None):
    """The measured answer to one step, once the visitor has answered it."""
    step = tour.STEPS[index]
    if not answer:
        raise ValueError("pick your answer first: the measurement comes after the prediction")
    if step.measure is tour.race:  # the visitor's own race: read here, nothing to run
        statuses = latest_race(session.owner(request)) if request is not None else []
        measured, text = tour.race(**race_inputs(statuses))
    else:
        measured, text = engine().run(step.measure, progress=progress_callback(progress))
    verdict = ("" if not measured else f"**You said {answer}; the measurement says {measured}.** "
               if answer != measured else f"**Right: {measured}.** ")
    return f"{verdict}{text}\n\n[Open the view that shows it](?{step.link})"


def _step(index: int, step: tour.Step):
    with gr.Accordion(f"{index + 1}. {step.title}", open=index == 0, elem_id=f"tour-step-{index + 1}"):
        answer = gr.Radio(list(step.choices), label=step.question, elem_id=f"tour-answer-{index + 1}")
        button = gr.Button("Reveal the measurement", size="sm", elem_id=f"tour-reveal-{index + 1}")
        result = gr.Markdown(elem_id=f"tour-result-{index + 1}")

    def on_click(answer, request: gr.Request, progress=gr.Progress()):
        return reveal(index, answer, progress, request)

    button.click(user_errors(on_click), answer, result, api_name=False, concurrency_limit=1,
                 concurrency_id="probes")


def build():
    """Lays out and wires the tab."""
    gr.Markdown(f"{len(tour.STEPS)} questions on why residual networks train when plain deep nets don't. "
                "Answer each "
                "before you reveal it: the answer is measured (shipped runs and checkpoints, or a net "
                "measured now), and each says where its number came from.")
    for index, step in enumerate(tour.STEPS):
        _step(index, step)
