"""Which ResNet a file's layer graph is: its depth, its version, its shortcuts, plain or not.

The file's graph (`import_layers.Graph`) is read from its input to its output into steps: a
convolution (kernel, filters, stride), a batch norm, a ReLU, the global average pooling, the
dense layer, the softmax, and a residual block wherever the path forks and meets again at an
Add (its branch and its shortcut, the shorter of the two). The plan of a `ResNetSpec`
(`core.plans`) is read into the same steps, named as this app's models name their layers. The
depth follows from the convolutions on the main path (6n+1 in v1, 9n+1 in v2, plus the dense
layer); the file is the spec whose steps it matches one for one, and that match is the map of
its weights onto the app's model. Anything else is refused with the first step that differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.core.plans import ConvUnit, plan
from explorer.core.specs import ResNetSpec
from explorer.nets.import_layers import Graph, Layer

CIFAR_INPUT = (32, 32, 3)
WEIGHTED = ("conv", "bn", "dense")  # the steps whose weights are mapped


@dataclass(frozen=True)
class Step:
    """One step of a net: `kind` with its `detail`; a block holds its branch and shortcut."""

    kind: str  # conv, bn, relu, softmax, pool, dense, block, or other (described in detail)
    name: str  # the layer's name (in the file, or in this app's model)
    detail: tuple = ()  # conv: (kernel, filters, stride); dense: (units,); other: (text,)
    branch: tuple = ()
    shortcut: tuple = ()

    def describe(self) -> str:
        if self.kind == "conv":
            kernel, filters, stride = self.detail[:3]
            extra = f", padding {self.detail[3]}" if len(self.detail) > 3 else ""
            return f"a {kernel}x{kernel} convolution of {filters} filters, stride {stride}{extra}"
        if self.kind == "block":
            shortcut = "identity" if not self.shortcut else "projection"
            return f"a residual block ({shortcut} shortcut)"
        return {"bn": "a batch normalization", "relu": "a ReLU", "softmax": "a softmax",
                "pool": "a global average pooling",
                "dense": f"a dense layer of {self.detail[0] if self.detail else '?'} units",
                }.get(self.kind, self.detail[0] if self.detail else self.kind)


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, list) else (value, value)


def _conv(layer: Layer, shape) -> tuple[list, tuple]:
    args = layer.args
    kernel, strides = _pair(args.get("kernel_size", 1)), _pair(args.get("strides", 1))
    unusual = [text for text, odd in (
        ("a kernel that is not square", kernel[0] != kernel[1]),
        ("unequal strides", strides[0] != strides[1]),
        ("dilation", _pair(args.get("dilation_rate", 1)) != (1, 1)),
        ("groups", args.get("groups", 1) != 1),
        ("channels first", args.get("data_format", "channels_last") != "channels_last"))
        if odd]
    if unusual or len(shape) != 3:
        what = ", ".join(unusual) or "a flat input"
        return [Step("other", layer.name, (f"a convolution with {what}",))], shape
    k, s, padding = kernel[0], strides[0], args.get("padding", "valid")
    same = padding == "same" or k == 1  # a 1x1 kernel pads nothing either way
    h, w, _ = shape
    out = (math.ceil(h / s), math.ceil(w / s)) if same else ((h - k) // s + 1, (w - k) // s + 1)
    detail = (k, args.get("filters"), s) + (() if same else (padding,))
    steps = [Step("conv", layer.name, detail)]
    if args.get("activation", "linear") != "linear":
        steps.append(Step(args["activation"], layer.name))
    return steps, (*out, args.get("filters"))


def _pool(layer: Layer, shape) -> tuple[list, tuple]:
    args = layer.args
    size = _pair(args.get("pool_size", 2))
    strides = _pair(args.get("strides") or list(size))
    if len(shape) == 3 and layer.kind == "AveragePooling2D" and size == tuple(shape[:2]) \
            and args.get("padding", "valid") == "valid" and args.get("data_format", "channels_last") == \
            "channels_last":
        return [Step("pool", layer.name)], (1, 1, shape[2])  # over the whole map: global pooling
    kind = "average" if layer.kind == "AveragePooling2D" else "max"
    if len(shape) != 3:
        return [Step("other", layer.name, (f"{kind} pooling of a flat input",))], shape
    h, w, c = shape
    out = (max(1, (h - size[0]) // strides[0] + 1), max(1, (w - size[1]) // strides[1] + 1), c)
    return [Step("other", layer.name, (f"{kind} pooling {size[0]}x{size[1]} of a {h}x{w} map",))], out


def layer_steps(layer: Layer, shape) -> tuple[list, tuple]:
    """The steps of one (non-Add) layer and the shape of its output, from its input's shape."""
    args, kind = layer.args, layer.kind
    if kind == "Conv2D":
        return _conv(layer, shape)
    if kind == "BatchNormalization":
        axis = args.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        ok = axis in (-1, len(shape)) and len(shape) == 3
        return [Step("bn", layer.name) if ok else Step("other", layer.name, ("a batch norm over other axes",))
                ], shape
    if kind == "Activation":
        return ([] if args.get("activation") == "linear" else [Step(args["activation"], layer.name)]), shape
    if kind == "ReLU":
        plain = args.get("max_value") is None and not args.get("negative_slope") and not args.get("threshold")
        return [Step("relu", layer.name) if plain else Step("other", layer.name, ("a clipped or leaky ReLU",))
                ], shape
    if kind in ("AveragePooling2D", "MaxPooling2D"):
        return _pool(layer, shape)
    if kind == "GlobalAveragePooling2D":
        return [Step("pool", layer.name)], (1, 1, shape[-1]) if args.get("keepdims") else (shape[-1],)
    if kind == "Flatten":
        if len(shape) == 1 or tuple(shape[:2]) == (1, 1):
            return [], (shape[-1],)
        return [Step("other", layer.name, (f"a Flatten of a {shape[0]}x{shape[1]} map",))], \
            (math.prod(shape),)
    if kind == "Dense":
        steps = [Step("dense", layer.name, (args.get("units"),)) if len(shape) == 1 else
                 Step("other", layer.name, ("a dense layer on a feature map",))]
        if args.get("activation", "linear") != "linear":
            steps.append(Step(args["activation"], layer.name))
        return steps, (args.get("units"),)
    return [Step("other", layer.name, (f"a {kind} layer",))], shape


def _chain(layers: list[Layer], shape) -> tuple[list, tuple]:
    steps = []
    for layer in layers:
        more, shape = layer_steps(layer, shape)
        steps += more
    return steps, shape


def _path(graph: Graph, start: Layer) -> tuple[list[Layer], Layer]:
    """The layers from `start` up to the Add it leads to, and that Add."""
    path, layer = [], start
    while layer.kind != "Add":
        path.append(layer)
        after = graph.consumers(layer.name)
        if len(after) != 1:
            raise ValueError(f"the path through layer {layer.name!r} "
                             + ("forks again before it is added back: a block inside a block"
                                if after else "is never added back to the other") + " is not a ResNet's")
        layer = after[0]
    return path, layer


def _block(graph: Graph, fork: str, after: list[Layer], shape) -> tuple[Step, tuple, str]:
    """The residual block starting where the output of `fork` goes two ways."""
    (first, add), (second, other) = _path(graph, after[0]), _path(graph, after[1])
    ends = sorted(path[-1].name if path else fork for path in (first, second))
    if add.name != other.name or sorted(add.inbound) != ends:
        raise ValueError(f"the two paths from layer {fork!r} do not meet again at one Add of the two: "
                         "not a ResNet's block")
    shortcut, branch = sorted((first, second), key=len)
    if not branch:
        raise ValueError(f"Add layer {add.name!r} adds a tensor to itself: not a ResNet's block")
    branch_steps, out = _chain(branch, shape)
    shortcut_steps, _ = _chain(shortcut, shape)
    return Step("block", add.name, (), tuple(branch_steps), tuple(shortcut_steps)), out, add.name


def file_steps(graph: Graph) -> tuple[Step, ...]:
    """The steps of the file's net, input to output.

    Raises:
        ValueError: the input is not a 32x32 RGB image, or the graph has a shape no ResNet has
            (a layer's output used three ways, paths that never meet again, an Add of three).
    """
    if tuple(graph.input_shape) != CIFAR_INPUT:
        raise ValueError(f"its input is {'x'.join(map(str, graph.input_shape))}: CIFAR-10 nets take "
                         "32x32x3 images")
    steps, name, shape = [], graph.input, CIFAR_INPUT
    while name != graph.output:
        after = graph.consumers(name)
        if any(layer.kind == "Add" and len(layer.inbound) != 2 for layer in after):
            raise ValueError(f"an Add after layer {name!r} sums other than two tensors: not a ResNet's")
        if len(after) == 1 and after[0].kind != "Add":
            more, shape = layer_steps(after[0], shape)
            steps, name = steps + more, after[0].name
        elif len(after) == 2:
            block, shape, name = _block(graph, name, after, shape)
            steps.append(block)
        else:
            raise ValueError(f"the output of layer {name!r} goes to {len(after)} layers; in a ResNet it goes "
                             "to one, or to a block and its shortcut")
    return tuple(steps)


def _unit_steps(prefix: str, unit: ConvUnit) -> list[Step]:
    """One unit of the plan, named as `models` names its layers."""
    suffix = "" if unit.index == 0 else str(unit.index)
    conv = [Step("conv", f"{prefix}_conv{suffix}", (unit.kernel_size, unit.filters, unit.strides))]
    norm = [Step("bn", f"{prefix}_bn{suffix}")] if unit.batch_norm else []
    act = [Step("relu", f"{prefix}_relu{suffix}")] if unit.activation else []
    return norm + act + conv if unit.preact else conv + norm + act


def plan_steps(spec: ResNetSpec) -> tuple[Step, ...]:
    """The steps of this app's model of `spec` (CIFAR family, projection shortcuts)."""
    net = plan(spec)
    steps = _unit_steps("stem", net.stem)
    for block in net.blocks:
        branch = [step for unit in block.units for step in _unit_steps(block.name, unit)]
        if block.shortcut:
            filters, strides = block.out_shape[-1], block.units[0].strides
            shortcut = () if block.shortcut == "identity" else (
                Step("conv", f"{block.name}_shortcut", (1, filters, strides)),)
            steps.append(Step("block", f"{block.name}_add", (), tuple(branch), shortcut))
        else:
            steps += branch
        if block.post_activation:
            steps.append(Step("relu", f"{block.name}_out"))
    if net.head_preact:
        steps += [Step("bn", "head_bn"), Step("relu", "head_relu")]
    steps += [Step("pool", "head_pool"), Step("dense", "head_dense", (spec.num_classes,)),
              Step("softmax", "head_dense")]
    return tuple(steps)


class Mismatch(ValueError):
    """The file's steps differ from a spec's; `matched` says how far they agreed."""

    def __init__(self, message: str, matched: int):
        super().__init__(message)
        self.matched = matched


def match(found, expected, spec_name: str, pairs: list, before: str = "its input") -> str:
    """Appends (file layer, app layer, kind) to `pairs` for each weighted step; raises `Mismatch`
    at the first step that differs. Returns the name of the last step matched."""
    for index in range(max(len(found), len(expected))):
        mine = found[index] if index < len(found) else None
        theirs = expected[index] if index < len(expected) else None
        if mine is None:
            raise Mismatch(f"the file ends after {before!r} where {spec_name} goes on with "
                           f"{theirs.name} ({theirs.describe()})", len(pairs))
        if theirs is None:
            raise Mismatch(f"the file goes on with {mine.describe()} ({mine.name!r}) after {spec_name}'s "
                           f"last layer", len(pairs))
        if (mine.kind, mine.detail) != (theirs.kind, theirs.detail):
            raise Mismatch(f"layer {mine.name!r} is {mine.describe()} where {spec_name} has {theirs.name} "
                           f"({theirs.describe()})", len(pairs))
        if mine.kind == "block":
            match(mine.branch, theirs.branch, spec_name, pairs, before)
            match(mine.shortcut, theirs.shortcut, spec_name, pairs, before)
        elif mine.kind in WEIGHTED:
            pairs.append((mine.name, theirs.name, mine.kind))
        before = mine.name
    return before


def _main_convs(steps) -> int:
    return sum(1 if step.kind == "conv" else _main_convs(step.branch) if step.kind == "block" else 0
               for step in steps)


def recognise(graph: Graph, name: str) -> tuple[ResNetSpec, list, bool]:
    """The ResNet a file's graph is, and how its layers map onto this app's model.

    Args:
        graph: the file's parsed graph.
        name: the file's name, for messages.

    Returns:
        (spec, pairs, logits): the `ResNetSpec` (CIFAR family, 10 classes, projection
        shortcuts where shapes change); (file layer, app layer, "conv" | "bn" | "dense") for
        every weighted layer, input to output; whether the file ends in logits (a dense layer
        without softmax, which the app's model adds).

    Raises:
        ValueError: what did not match: the input, the graph's shape, the number of
            convolutions, or the first layer that differs from the spec it comes nearest to.
    """
    try:
        steps = file_steps(graph)
    except ValueError as err:
        raise ValueError(f"{name} is not a CIFAR ResNet of the tutorial's kind: {err}") from None
    logits = bool(steps) and steps[-1].kind == "dense"
    if logits:
        steps += (Step("softmax", steps[-1].name),)
    residual = any(step.kind == "block" for step in steps)
    convs = _main_convs(steps)
    candidates = [ResNetSpec(convs + 1, version, residual=residual) for version, step in ((1, 6), (2, 9))
                  if convs >= step + 1 and (convs - 1) % step == 0]
    kind = "residual (Add layers)" if residual else "plain (no Add layers)"
    if not candidates:
        raise ValueError(f"{name} is not a CIFAR ResNet of the tutorial's kind: it is {kind} with {convs} "
                         "convolutions on its main path, where a ResNet has 6n+1 (v1) or 9n+1 (v2)")
    failures = []
    for spec in candidates:
        pairs = []
        try:
            match(steps, plan_steps(spec), spec.name, pairs)
        except Mismatch as err:
            failures.append(err)
            continue
        return spec, pairs, logits
    nearest = max(failures, key=lambda err: err.matched)
    raise ValueError(f"{name} is {kind} with {convs} convolutions on its main path, but not a CIFAR ResNet "
                     f"of the tutorial's kind: {nearest}")
