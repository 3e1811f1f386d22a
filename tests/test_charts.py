"""The shared charts: one palette (plain red, residual blue), log axes that read one way, and
the reading of a race's gradient heatmaps."""

import numpy as np
import pytest

from explorer.core.specs import make_spec
from explorer.views import charts
from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR


def _net(depth, residual):
    """A study result's "net": what its net's kind is read from."""
    return make_spec(depth, 1, residual=residual).to_config()


def _history(epochs, lr=0.1):
    return {"epochs": [{"epoch": e, "loss": 2.0 / e, "val_loss": 2.2 / e, "accuracy": 0.3,
                        "val_accuracy": 0.28, "learning_rate": lr} for e in epochs]}


def _colors(fig, suffix):
    return [trace.line.color for trace in fig.data if trace.name.endswith(suffix)]


def test_training_curves_draw_plain_red_and_residual_blue_whatever_the_order():
    runs = [("Plain-20 v1", _history([1, 2])), ("ResNet-20 v1", _history([1, 2]))]
    fig = charts.training_curves(runs, title="race", residual=[False, True])
    assert _colors(fig, "train loss") == [PLAIN_COLOR, RESIDUAL_COLOR]
    assert _colors(fig, " lr") == [PLAIN_COLOR, RESIDUAL_COLOR]
    swapped = charts.training_curves(runs[::-1], residual=[True, False])
    assert _colors(swapped, "train loss") == [RESIDUAL_COLOR, PLAIN_COLOR]
    # a second net of a kind gets a shade of the kind's color, not the other kind's
    two = charts.training_curves(runs + [("ResNet-56 v1", _history([1]))], residual=[False, True, True])
    third = _colors(two, "train loss")[2]
    assert third not in (PLAIN_COLOR, RESIDUAL_COLOR) and third in charts.SHADES[True]
    # kind unknown: run order, as before
    assert _colors(charts.training_curves(runs), "train loss") == charts.PALETTE[:2]


def test_a_single_epoch_gets_sensible_axes():
    fig = charts.training_curves([("ResNet-20 v1", _history([1], lr=0.1))], residual=[True])
    assert list(fig.layout.xaxis3.range) == [0, 2]  # around the one epoch, not -0.5 .. 1
    assert list(fig.layout.yaxis3.range) == pytest.approx([0, 0.11])  # from 0 to 1.1 x the rate
    assert fig.layout.yaxis.rangemode == "tozero"


def test_every_chart_draws_plain_red_and_residual_blue():
    flow = type("Flow", (), dict(layers=["a", "b"], plain=[10.0, 1.0], residual=[1.0, 1.0], stage_starts=[0],
                                 spec_name="ResNet-20 v1", batch_size=8, blocks=[], plain_blocks=[],
                                 residual_blocks=[]))
    by_name = {t.name: t.line.color for t in charts.flow_figure(flow).data}
    assert by_name == {"plain": PLAIN_COLOR, "residual": RESIDUAL_COLOR}
    rows = [{"depth": d, "plain_first": 1.0, "residual_first": 1.0, "plain_median": 1.0,
             "residual_median": 1.0} for d in (20, 56)]
    sweep = charts.sweep_figure({"version": 1, "rows": rows})
    assert {t.line.color for t in sweep.data if t.name.startswith("plain")} == {PLAIN_COLOR}
    runs = [{"label": "ResNet-20 v1", "residual": True,
             "epochs": [{"epoch": 1, "train_error": .5, "test_error": .5}]},
            {"label": "Plain-20 v1", "residual": False,
             "epochs": [{"epoch": 1, "train_error": .5, "test_error": .5}]}]
    assert _colors(charts.degradation_figure(runs), "v1") == [RESIDUAL_COLOR] * 2 + [PLAIN_COLOR] * 2
    # a second, longer run of a shipped net is listed but starts hidden, off the epoch axis
    longer = dict(runs[0], label="ResNet-20 v1, 200 epochs", repeat=True)
    shown = {t.name: t.visible for t in charts.degradation_figure(runs + [longer]).data}
    assert shown == {"ResNet-20 v1": True, "Plain-20 v1": True, "ResNet-20 v1, 200 epochs": "legendonly"}
    lesion = [{"model": m, "baseline": 0.9, "blocks": ["b1"], "accuracy": [0.5], "downsampling": [False],
               "net": _net(56, r)} for m, r in (("Plain-56 v1", False), ("ResNet-56 v1", True))]
    assert [t.marker.color for t in charts.lesion_figure(lesion).data] == [PLAIN_COLOR, RESIDUAL_COLOR]
    grid = [-1.0, 0.0, 1.0]
    landscape = [{"model": m, "net": _net(20, r), "alphas": grid, "loss_1d": [2.0, 0.5, 2.0], "grid": grid,
                  "loss_2d": [[1.0] * 3] * 3} for m, r in (("net a", False), ("net b", True))]
    lines = [t.line.color for t in charts.landscape_figure(landscape).data if t.type == "scatter"]
    assert lines == [PLAIN_COLOR, RESIDUAL_COLOR]


def test_log_axes_write_powers_of_ten_and_numbers_not_digits():
    wide = charts.log_axis([1e-6, 3e15])
    assert wide["exponentformat"] == "power" and wide["dtick"] >= 1 and "tickformat" not in wide
    assert wide["minor"]["ticks"] == "inside"  # unlabeled ticks between the powers, clear of the labels
    narrow = charts.log_axis([0.4, 0.9])  # the 0.9 .. 0.4 that read as "9 ... 4"
    assert narrow["tickformat"] == ",.2~g" and narrow["exponentformat"] == "power"
    # less than a decade, far from 1: widened to two powers of ten, so two labels at least
    assert charts.log_axis([2e6, 5e6])["range"] == [6, 7]
    flow = type("Flow", (), dict(layers=["a", "b"], plain=[1e9, 1e-6], residual=[1.0, 1.0], stage_starts=[0],
                                 spec_name="Plain-110 v1", batch_size=8))
    assert charts.flow_figure(flow).layout.yaxis.exponentformat == "power"
    rows = [{"depth": d, "plain_first": 10.0 ** d, "residual_first": 1.0, "plain_median": 1.0,
             "residual_median": 1.0} for d in (2, 15)]
    sweep = charts.sweep_figure({"version": 1, "rows": rows}).layout
    assert sweep.yaxis.exponentformat == "power" and sweep.xaxis.exponentformat == "power"
    assert list(sweep.xaxis.ticktext) == ["2", "15"]
    grid = [-1.0, 0.0, 1.0]
    landscape = charts.landscape_figure([{"model": "m", "alphas": grid, "loss_1d": [0.9, 0.4, 0.8],
                                          "grid": grid, "loss_2d": [[1.0] * 3] * 3}])
    assert landscape.layout.yaxis.type == "log" and landscape.layout.yaxis.tickformat == ",.2~g"


def test_charts_use_no_webgl():
    """A page holds only a few WebGL contexts: the shared charts draw SVG."""
    import inspect

    source = inspect.getsource(charts)
    assert "Scattergl" not in source and "gl(" not in source


def _grads(steps, first_layer):
    return {"layers": ["stem_conv", "stage1_block1_conv1"], "steps": steps,
            "norms": [[value, 1.0] for value in first_layer]}


def test_training_gradient_reading_says_during_training_from_the_numbers():
    runs = [("ResNet-110 v1", True, _grads([0, 100, 200], [0.91, 1.0, 1.0])),
            ("Plain-110 v1", False, _grads([0, 100, 200, 300], [320.0, 1e-2, 2e-5, 1e-5]))]
    text = charts.training_gradient_reading(runs)
    assert text.count("\n") == 0 and "of Plain-110 v1 against ResNet-110 v1" in text
    # the first and the last step both runs logged (step 300: the residual run is not there yet)
    assert "320 against 0.91 at step 0 (plain/residual 350)" in text
    assert "2.0×10⁻⁵ against 1 at step 200 (plain/residual 2.0×10⁻⁵)" in text
    assert "step 300" not in text
    assert "during training" in text.lower() and "not at initialization" in text
    # nothing to compare yet: no line
    assert charts.training_gradient_reading(runs[:1]) == ""
    assert charts.training_gradient_reading([runs[0], ("Plain-110 v1", False, {})]) == ""
    assert charts.training_gradient_reading([runs[0], ("Plain-110 v1", False, _grads([5], [1.0]))]) == ""


def test_gradient_heatmaps_keep_their_titles():
    runs = [("Plain-20 v1", _grads([0, 1], [1.0, 2.0])), ("ResNet-20 v1", _grads([0, 1], [1.0, 1.0]))]
    fig = charts.gradient_heatmaps(runs)
    assert [a.text for a in fig.layout.annotations][:2] == ["Plain-20 v1", "ResNet-20 v1"]
    assert np.isfinite(fig.data[0].z).all()


def test_a_run_without_gradients_yet_says_so_over_its_own_subplot():
    runs = [("Plain-20 v1", _grads([0, 1], [1.0, 2.0])), ("ResNet-20 v1", {})]
    fig = charts.gradient_heatmaps(runs)
    note = [a for a in fig.layout.annotations if a.text == "no gradient norms logged yet"]
    assert len(note) == 1 and note[0].xref == "paper"
    left, right = fig.layout.xaxis2.domain  # the second subplot's, not the first's
    assert left < note[0].x < right and note[0].x > fig.layout.xaxis.domain[1]


def test_a_few_columns_are_labelled_by_whole_steps():
    fig = charts.gradient_heatmaps([("Plain-20 v1", _grads([1], [1.0])),
                                    ("ResNet-20 v1", _grads(list(range(1, 200, 4)), [1.0] * 50))])
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis2.dtick is None  # a long run keeps Plotly's own


def test_training_curves_draw_stretch_means_with_no_step_at_an_epochs_start():
    """Keras' running mean restarts each epoch; the curve is the mean of each stretch between
    logged points, checked against the batches' own losses."""
    import numpy as np

    from explorer.views.charts import training_curves

    losses = np.arange(1, 9, dtype=float)  # 4 batches an epoch, logged every 2
    epochs = [0.5, 1.0, 1.5, 2.0]
    running = [losses[:2].mean(), losses[:4].mean(), losses[4:6].mean(), losses[4:8].mean()]
    history = {"epochs": [{"epoch": 1, "loss": 2.5}, {"epoch": 2, "loss": 6.5}],
               "steps": {"step": [2, 4, 6, 8], "epoch": epochs, "loss": running,
                         "accuracy": [0.1] * 4, "learning_rate": [0.1] * 4}}
    fig = training_curves([("run", history)])
    loss = next(t for t in fig.data if t.name == "run train loss")
    np.testing.assert_allclose(loss.y, [losses[i:i + 2].mean() for i in (0, 2, 4, 6)])


def test_curves_with_no_point_yet_start_at_zero_and_say_why_they_are_empty():
    """#36: a job before its first steps drew its curves over Plotly's default ranges (the
    learning rate from -1 to 4); now from 0, with a line saying no point has come yet."""
    fig = charts.training_curves([("ResNet-8 v1", {})])
    assert fig.layout.xaxis.range == (0, 1) and fig.layout.yaxis3.range == (0, 1)
    assert any("no curve point yet" in note.text for note in fig.layout.annotations)
    drawn = charts.training_curves([("ResNet-8 v1", _history([1, 2]))])
    assert not any("no curve point yet" in note.text for note in drawn.layout.annotations)
