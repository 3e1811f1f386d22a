"""How the page's events are wired, read from the assembled demo."""

import gradio as gr


def test_no_dropdown_starts_work_on_input():
    """Gradio 6's Dropdown sends `input` for a pick and again for the blur that follows it (and
    for any blur, a pick or not): a handler on it ran twice, or ran when nothing was chosen.
    Dropdowns that start work listen to `select` (one per pick) or `change`."""
    from app import build_demo

    demo = build_demo()
    dropdowns = {block._id: block.elem_id or block.label for block in demo.blocks.values()
                 if isinstance(block, gr.Dropdown)}
    assert len(dropdowns) >= 6
    wired = {(dropdowns[target], event) for fn in demo.fns.values() for target, event in fn.targets
             if target in dropdowns}
    on_input = sorted(name for name, event in wired if event == "input")
    assert not on_input, f"Dropdown.input handlers (use .select): {on_input}"
    picks = {name for name, event in wired if event == "select"}
    assert {"arch-overlay", "arch-checkpoint", "arch-expand", "ins-first"} <= picks
