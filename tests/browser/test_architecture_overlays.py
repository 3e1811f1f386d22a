"""The Architecture tab as the canvas: the whole of ResNet-1202 on one screen, measurements
drawn on the blocks (ResNet-56 at initialization, the test app's ResNet-20 checkpoints, a job
trained here), a block deleted. Screenshots in tests/artifacts/architecture_*.png."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COLORBAR = "() => document.querySelector('#arch-plot .colorbar') !== null"


def _overlay(page, name, title):
    """Chooses an overlay and waits for the figure whose title says it."""
    page.get_by_label("Overlay", exact=True).click()
    page.get_by_role("option", name=name).click()
    page.locator("#arch-plot").get_by_text(title).first.wait_for(timeout=240_000)
    page.wait_for_function(COLORBAR)


def _checkpoint(page, name):
    page.get_by_label("Checkpoint of this net (trained overlays, deletion)").click()
    page.get_by_role("option", name=name).first.click()


def _build(page, depth):
    page.get_by_role("tab", name="Architecture").click()
    page.locator("#arch-depth input").fill(str(depth))
    page.locator("#arch-build").click()


def test_resnet1202_whole_net_on_one_screen(page, screenshot):
    _build(page, 1202)
    page.get_by_text("ResNet-1202 v1: 19,558,378 parameters").first.wait_for(timeout=60_000)
    plot = page.locator("#arch-plot")
    for label in ("stage 1: 32x32x16, 200 blocks", "stage 2: 16x16x32, 200 blocks",
                  "stage 3: 8x8x64, 200 blocks", "× 196", "× 195"):
        plot.get_by_text(label).first.wait_for()
    box = plot.locator(".js-plotly-plot").bounding_box()
    assert box["height"] < 700  # the whole net, no scrolling inside the figure
    assert "png" in plot.get_by_role("button", name="PNG").text_content().lower()
    screenshot("architecture_1202_whole_net")
    page.set_viewport_size({"width": 390, "height": 844})
    plot.get_by_text("× 196").first.wait_for()
    screenshot("architecture_1202_phone")


def test_overlays_on_resnet56_and_the_checkpoints_then_delete_a_block(page, screenshot):
    _build(page, 56)
    page.get_by_text("ResNet-56 v1: 861,770 parameters").first.wait_for(timeout=60_000)
    _overlay(page, "gradient norm at initialization, plain twin below",
             "gradient norm per block at initialization")
    page.locator("#arch-plot").get_by_text("Plain-56 v1 (plain twin), at initialization").first.wait_for()
    page.locator("#arch-block-info").get_by_text("gradient (‖∂L/∂(block output)‖)").wait_for(timeout=30_000)
    screenshot("architecture_overlay_gradient")
    _overlay(page, "ratio residual / plain gradient norm", "residual net over its plain twin")
    screenshot("architecture_overlay_ratio")
    _overlay(page, "residual-branch share ‖F(x)‖ / ‖x‖", "residual branch against the skip")
    screenshot("architecture_overlay_branch_share_init")
    _overlay(page, "where the gradient goes back: shortcut or branch (line widths)",
             "where the gradient goes back")
    screenshot("architecture_overlay_gradient_paths")

    _checkpoint(page, "r20_untrained")  # the overlay follows the checkpoint at once
    page.locator("#arch-plot").get_by_text("ResNet-20 v1, trained (top)").first.wait_for(timeout=240_000)
    _overlay(page, "gradient norm, trained against at initialization", "trained against at initialization")
    screenshot("architecture_overlay_gradient_trained")
    _overlay(page, "lesion: accuracy lost per deleted block", "accuracy lost when the block")
    screenshot("architecture_overlay_lesion")

    page.get_by_label("Block", exact=True).click()
    page.get_by_role("option", name="stage2_block2").click()
    page.locator("#arch-block-info").get_by_text("stage2_block2").first.wait_for()
    # the panel has the lesion overlay's values (what the deletion is read beside) once it says them
    page.locator("#arch-block-info").get_by_text("accuracy lost").first.wait_for(timeout=60_000)
    page.locator("#arch-delete").click()
    deleted = page.locator("#arch-deleted")
    deleted.get_by_text("without stage2_block2's residual branch").wait_for(timeout=120_000)
    assert "A median deletion costs" in deleted.inner_text()  # the lesion overlay's study, same images
    screenshot("architecture_delete_block")

    _checkpoint(page, "plain20_untrained")
    page.get_by_label("Block", exact=True).click()
    page.get_by_role("option", name="stage2_block1").click()
    page.locator("#arch-block-info").get_by_text("cannot be deleted").first.wait_for(timeout=240_000)
    page.locator("#arch-delete").click()
    page.get_by_text("stage2_block1 cannot be deleted: in a plain net it changes the shape").first.wait_for()
    screenshot("architecture_delete_refused")


def test_gradient_over_training_replays_a_job(page, screenshot):
    page.get_by_text("ResNet-56 v1: 861,770 parameters").first.wait_for(timeout=60_000)  # the page is up
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-depth input").fill("8")
    page.locator("#train-epochs input").fill("2")
    page.locator("#train-subset input").fill("256")
    page.locator("#train-start").click()
    page.locator("#train-progress").get_by_text("done").first.wait_for(timeout=300_000)
    job = page.locator("#train-jobs textarea, #train-jobs input").first.input_value().strip()
    page.get_by_role("tab", name="Architecture").click()
    page.get_by_label("Overlay", exact=True).click()
    page.get_by_role("option", name="gradient norm over training (a job's log)").click()
    page.get_by_text("gradient over training reads a job's log").first.wait_for()  # no job chosen yet
    # said once: the pick is one request (Gradio's Dropdown also sends `input` on the blur after it)
    page.wait_for_timeout(1500)
    toasts = " ".join(page.locator(".toast-body").all_inner_texts())
    assert toasts.count("gradient over training reads a job's log") == 1, toasts
    # the graph on screen stays, with no "Error" badge in its place (#36 item 5)
    assert page.locator("#arch-plot .js-plotly-plot").is_visible()
    assert "Error" not in page.locator("#arch-plot").inner_text()
    page.locator("#arch-job input, #arch-job textarea").first.fill(job)
    page.locator("#arch-job input, #arch-job textarea").first.press("Enter")
    page.locator("#arch-plot").get_by_text("ResNet-8 v1, epoch 2").first.wait_for(timeout=120_000)
    page.wait_for_function(COLORBAR)
    page.locator("#arch-epoch").wait_for(state="visible")  # the slider that replays the run
    screenshot("architecture_overlay_gradient_training")


# The screen centre of the graph's marker for a block (its customdata), read from Plotly's own
# axes so the click lands where Plotly looks for the nearest point.
POINT_JS = ("""(name) => {
  const gd = document.querySelector('#arch-plot .js-plotly-plot');
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  for (const trace of gd._fullData) {
    const names = trace.customdata || [];
    const i = Array.from(names).indexOf(name);
    if (i >= 0 && trace.mode === 'markers+text')"""
            """ return {x: box.left + xa.l2p(trace.x[i]), y: box.top + ya.l2p(trace.y[i])};
  }
  return null;
}""")


def _click_block(page, name):
    """Clicks the block's marker in the graph (a real mouse click on the figure); again while
    Plotly is still laying out a figure just drawn (it drops a click then, as it would a
    person's in the same tenth of a second)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_function(
        "() => document.querySelector('#arch-plot .js-plotly-plot')?.explorerClicks === true")
    for _ in range(10):
        page.evaluate("() => { window.explorerClickedBlock = null; }")
        point = page.evaluate(POINT_JS, name)
        assert point, f"no marker for {name}"
        page.mouse.move(point["x"], point["y"])
        page.mouse.click(point["x"], point["y"])
        try:
            page.wait_for_function(f"() => window.explorerClickedBlock === {name!r}", timeout=1500)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"a click on {name} never reached the page")


def test_a_click_on_the_graph_chooses_a_block_whose_layers_show_under_the_overlay(page, screenshot):
    _build(page, 20)
    page.get_by_text("ResNet-20 v1: 274,442 parameters").first.wait_for(timeout=60_000)
    # the build's block list reaches the selector after the figure: a click before it would be
    # overwritten by its first block
    page.wait_for_function("() => document.querySelector('#arch-block input')?.value === 'stage1_block1'")
    page.wait_for_timeout(500)
    _click_block(page, "stage2_block2")
    info = page.locator("#arch-block-info")
    info.get_by_text("stage2_block2").first.wait_for(timeout=30_000)
    assert page.locator("#arch-block input").input_value() == "stage2_block2"  # the selector follows
    # #36 item 6: the block is ringed on the graph, and its numbers are right under the graph
    page.wait_for_function("() => Array.from(document.querySelectorAll("
                           "'#arch-plot path.point.explorer-chosen'))"
                           ".some(p => p.__data__.data === 'stage2_block2')", timeout=10_000)
    plot_box, info_box = page.locator("#arch-plot").bounding_box(), info.bounding_box()
    assert 0 <= info_box["y"] - (plot_box["y"] + plot_box["height"]) < 200, (plot_box, info_box)
    _overlay(page, "gradient norm at initialization, plain twin below",
             "gradient norm per block at initialization")
    _click_block(page, "stage3_block1")
    info.get_by_text("stage3_block1 of ResNet-20 v1").wait_for(timeout=30_000)
    info.get_by_text("gradient (‖∂L/∂(block output)‖)").wait_for()  # the overlay's value for it
    page.locator("#arch-expand-block").click()  # its layers on the graph, the overlay kept
    page.wait_for_function("""() => {
      const gd = document.querySelector('#arch-plot .js-plotly-plot');
      return gd && gd._fullData.some(t => t.name === 'add' && t.marker && t.marker.coloraxis === 'coloraxis');
    }""", timeout=60_000)
    assert page.locator("#arch-expand input").input_value() == "stage3_block1's layers"
    page.locator("#arch-plot").get_by_text("Plain-20 v1 (plain twin), at initialization").first.wait_for()
    screenshot("architecture_block_clicked_expanded")


def test_the_graph_saves_as_svg_from_the_modebar_and_as_png_from_its_button(page):
    page.get_by_text("ResNet-56 v1: 861,770 parameters").first.wait_for(timeout=60_000)
    plot = page.locator("#arch-plot")
    plot.hover()
    with page.expect_download() as svg:
        plot.locator(".modebar-btn[data-title^='Download plot']").click()
    assert svg.value.suggested_filename == "resnet-explorer-arch-plot.svg"
    with page.expect_download() as png:
        plot.get_by_role("button", name="PNG").click()
    assert png.value.suggested_filename == "resnet-explorer-arch-plot.png"
