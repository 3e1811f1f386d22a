"""The architecture graph coloured by an overlay's measurement (`studies.overlays`), its twin
below on the same colour scale."""

from __future__ import annotations

from explorer.core.specs import ResNetSpec
from explorer.studies.overlays import EDGE_KINDS, OVERLAY_KINDS, check_kind
from explorer.views.graph import figure as graph_figure
from explorer.views.graph_figure import Paint


def overlay_figure(result: dict, expand: str = "none"):
    """The whole-net graph coloured by an `overlay` result, its twin below on the same scale.

    Args:
        result: as returned by `overlay`.
        expand: how the nets are drawn (see `graph.build_graph`): "none", "stageK", "all" or
            a block's name; an expanded block's layers take its colour and value.

    Returns:
        A Plotly `go.Figure`: a colour bar, each block's value on hover.

    Raises:
        ValueError: `expand` names no stage or block of the net measured.
    """
    kind = OVERLAY_KINDS[check_kind(result["overlay"])]

    def paint(values, label):
        return Paint(dict(zip(result["blocks"], values)), label, kind.quantity, kind.log, kind.center,
                     kind.missing, percent=kind.percent, widths=kind.name in EDGE_KINDS)

    twin = None
    if "twin_values" in result:
        twin = (ResNetSpec.from_config(result["twin_net"]),
                paint(result["twin_values"], result["twin_label"]))
    said = (f"{result['label']} (top) and {result['twin_label']} (below), one colour scale" if twin
            else result["label"])
    title = f"{result['model']}: {kind.what}<br><sup>{said}; hover a block for its value</sup>"
    return graph_figure(ResNetSpec.from_config(result["net"]), expand, title,
                        paint(result["values"], result["label"]), twin)
