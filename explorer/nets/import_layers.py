"""A model file's config read as a graph of standard Keras layers, before anything is built.

`check_code` refuses code anywhere in the config (a Lambda layer, a custom class, a function),
naming the layer and why; `parse` then reads each layer's class, the few settings that decide
what it computes (the rest, initializers and regularizers among them, is never read) and the
layers it takes its input from, from a Keras 3 file (`.keras`, or `.h5` written by Keras 3) or a
Keras 2 one (`.h5`). `functional_model` builds a legacy `.h5` file's net from that graph with
Keras' own classes, chosen from `KERAS_CLASSES` by name: the file's model, with no code of its.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OWN = "explorer>ResNet"  # a checkpoint of this app: Keras loads it with the class registered here
MODELS = ("Functional", "Model", "Sequential")
ACTIVATIONS = ("relu", "softmax", "linear")
# The layers a CIFAR ResNet is built from, and the settings of each that are read.
SETTINGS = {
    "InputLayer": ("batch_shape", "batch_input_shape", "shape"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
               "groups", "activation", "use_bias"),
    "BatchNormalization": ("axis", "epsilon", "center", "scale"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Add": (),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "Flatten": ("data_format",),
    "Dense": ("units", "activation", "use_bias"),
}
BUILT_FROM = "Conv2D, BatchNormalization, Activation, Add, pooling, Flatten and Dense layers"
CODE = "code from a file never runs here"


@dataclass(frozen=True)
class Layer:
    """One layer of the file: its name, class, the settings read, and its input layers."""

    name: str
    kind: str
    args: dict = field(hash=False)
    inbound: tuple[str, ...] = ()


@dataclass
class Graph:
    """The file's net: its layers in the file's order, its one input and its one output."""

    layers: dict[str, Layer]
    input: str
    output: str
    input_shape: tuple

    def consumers(self, name: str) -> list[Layer]:
        """The layers that take `name`'s output, in the file's order."""
        if not hasattr(self, "_consumers"):
            self._consumers = {}
            for layer in self.layers.values():
                for source in dict.fromkeys(layer.inbound):
                    self._consumers.setdefault(source, []).append(layer)
        return self._consumers.get(name, [])


def is_own(config: dict) -> bool:
    """Whether the config is a checkpoint of this app (a `models.ResNet`)."""
    return config.get("registered_name") == OWN


def _layer_name(item) -> str:
    return str(item.get("name") or item.get("config", {}).get("name") or item.get("class_name"))[:60]


def _refuse_code(node: dict, layer: str, name: str) -> None:
    cls = str(node.get("class_name"))[:60]
    module, registered = node.get("module"), node.get("registered_name")
    if cls == "Lambda":
        raise ValueError(f"{name}: layer {layer!r} is a Lambda layer: it holds Python code, and {CODE} "
                         "(rebuild the model without it; give preprocessing with --preprocess)")
    if cls in ("__lambda__", "function", "__function__") or (cls.startswith("__") and cls not in (
            "__keras_tensor__", "__tuple__", "__numpy__", "__bytes__")):
        raise ValueError(f"{name}: layer {layer!r} holds a Python function ({cls}), and {CODE}")
    foreign = module is not None and not str(module).startswith("keras")
    if foreign or registered not in (None, cls):
        origin = registered if registered not in (None, cls) else module
        raise ValueError(f"{name}: layer {layer!r} uses {cls!r} ({str(origin)[:60]}), which is not part "
                         f"of Keras: its code is not in the file, and {CODE}")


def check_code(config: dict, name: str) -> None:
    """Refuses a config that would run code: Lambda layers, custom classes, functions.

    Args:
        config: the model's config (the JSON object Keras serialises a model to).
        name: the file's name, for the message.

    Raises:
        ValueError: naming the first layer that holds code, and what it is.
    """
    def walk(value, layer, top=False):
        if isinstance(value, dict):
            if "class_name" in value and not (top and is_own(value)):
                _refuse_code(value, layer, name)
            for key, inner in value.items():
                if key == "layers" and isinstance(inner, list):  # a model's layers: name each
                    for item in inner:
                        walk(item, _layer_name(item) if isinstance(item, dict) else layer)
                elif key != "compile_config":  # the training's loss and optimizer: never loaded
                    walk(inner, layer)
        elif isinstance(value, list):
            for item in value:
                walk(item, layer)
    walk(config, "(the model)", top=True)


def _plain(value):
    """A setting as plain data: numbers, text, booleans, None and lists of them."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"a setting that is not plain data ({type(value).__name__})")


def _settings(item: dict, name: str) -> dict:
    kind, layer = item["class_name"], _layer_name(item)
    config = item.get("config") or {}
    args = {key: _plain(config[key]) for key in SETTINGS[kind] if key in config and config[key] is not None}
    activation = args.get("activation")
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"{name}: layer {layer!r} has activation {str(activation)[:40]!r}; a CIFAR ResNet "
                         f"uses {', '.join(ACTIVATIONS)}")
    if config.get("quantization_config") is not None:
        raise ValueError(f"{name}: layer {layer!r} is quantized; save the float32 model")
    return args


def _history(value, found: list) -> list:
    """The names of the layers a Keras 3 node's arguments come from."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            found.append(str(value["config"]["keras_history"][0]))
        else:
            for inner in value.values():
                _history(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _history(inner, found)
    return found


def _inbound(item: dict, name: str) -> tuple[str, ...]:
    nodes = item.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise ValueError(f"{name}: layer {_layer_name(item)!r} is used {len(nodes)} times (shared "
                         "weights), which a ResNet of the tutorial's kind does not do")
    if not nodes:
        return ()
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        return tuple(_history(node.get("args", []), []))
    return tuple(str(entry[0]) for entry in node)  # Keras 2: [[name, node, tensor, kwargs], ...]


def _ends(value) -> list[str]:
    """input_layers / output_layers: ["name", 0, 0] or [["name", 0, 0], ...] -> names."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0]]
    return [str(entry[0]) for entry in value or []]


def _sequential(items: list, config: dict) -> list:
    """A Sequential model's layers as a chain, with an input layer first."""
    chained, before = [], None
    if items and items[0]["class_name"] != "InputLayer":
        first = items[0].get("config", {})
        shape = first.get("batch_input_shape") or first.get("batch_shape") or config.get("build_input_shape")
        before = "input"
        chained.append({"class_name": "InputLayer", "name": before, "config": {"batch_shape": shape}})
    for item in items:
        chained.append({**item, "inbound_nodes": [] if before is None else [[[before, 0, 0, {}]]]})
        before = _layer_name(item)
    return chained


def parse(model_config: dict, name: str) -> Graph:
    """The graph of standard layers a checked config describes (see `check_code`).

    Args:
        model_config: the model's config, {"class_name": "Functional" | "Sequential", "config"}.
        name: the file's name, for messages.

    Returns:
        The `Graph`.

    Raises:
        ValueError: the model is not a Functional or Sequential one, a layer is not among
            `SETTINGS` (say which and what it is), a setting is not plain data, or the graph
            has other than one input and one output.
    """
    kind = model_config.get("class_name")
    if kind not in MODELS:
        raise ValueError(f"{name} holds a {str(kind)[:40]} model; a Functional or Sequential Keras "
                         "model is imported")
    config = model_config.get("config") or {}
    items = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{name}: its config lists no layers")
    if kind == "Sequential":
        items = _sequential(items, config)
    layers = {}
    for item in items:
        cls, layer = item.get("class_name"), _layer_name(item)
        if cls in MODELS:
            raise ValueError(f"{name}: layer {layer!r} is a model inside the model; save the net as one "
                             "flat Functional model")
        if cls not in SETTINGS:
            raise ValueError(f"{name}: layer {layer!r} is a {str(cls)[:40]} layer; a CIFAR ResNet here is "
                             f"built from {BUILT_FROM}")
        layers[layer] = Layer(layer, cls, _settings(item, name), _inbound(item, name))
    inputs = [n for n, layer in layers.items() if layer.kind == "InputLayer"]
    outputs = [_layer_name(items[-1])] if kind == "Sequential" else _ends(config.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0] not in layers:
        raise ValueError(f"{name}: the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                         "a classifier has one of each")
    args = layers[inputs[0]].args
    shape = args.get("batch_shape") or args.get("batch_input_shape") or [None, *(args.get("shape") or [])]
    return Graph(layers, inputs[0], outputs[0], tuple(shape[1:]))


def _build(graph: Graph):
    """(the Keras model of the graph, its layers with weights), built with Keras' classes."""
    import keras  # deferred: reading a config needs no Keras

    tensors, built = {}, []
    for layer in graph.layers.values():
        args = dict(layer.args)
        if layer.kind == "InputLayer":
            tensors[layer.name] = keras.Input(shape=graph.input_shape, name=layer.name)
            continue
        if layer.kind == "BatchNormalization" and isinstance(args.get("axis"), list):
            args["axis"] = args["axis"][0] if len(args["axis"]) == 1 else args["axis"]
        inputs = [tensors[source] for source in layer.inbound if source in tensors]
        if len(inputs) != len(layer.inbound) or not inputs:
            raise ValueError(f"layer {layer.name!r} comes before the layers it takes its input from")
        try:
            made = getattr(keras.layers, layer.kind)(name=layer.name, **args)
            tensors[layer.name] = made(inputs if layer.kind == "Add" else inputs[0])
        except (TypeError, ValueError) as err:
            raise ValueError(f"layer {layer.name!r}: Keras refuses its settings ({err})") from None
        built.append(made)
    return keras.Model(tensors[graph.input], tensors[graph.output]), built


def functional_model(graph: Graph, weights: dict):
    """The file's net built with Keras' own layer classes and given the file's weights.

    Args:
        graph: the parsed graph (every layer one of `SETTINGS`, its settings plain data).
        weights: {layer name: {weight name: array}}, as `import_files` reads a `.h5` file.

    Returns:
        A Keras Functional model computing what the file's model computes.

    Raises:
        ValueError: Keras refuses a layer's settings, a layer's weights are missing or of
            other shapes than the layer's.
    """
    from explorer.nets.models import BUILD_LOCK  # deferred: reading a config needs no Keras

    with BUILD_LOCK:  # building draws initial weights: a seeded build elsewhere keeps its draws
        model, built = _build(graph)
    for made in built:
        given = weights.get(made.name, {})
        needed = [variable.name for variable in made.weights]
        if sorted(given) != sorted(needed):
            raise ValueError(f"layer {made.name!r} has weights {sorted(given)} in the file, where it "
                             f"needs {needed}")
        try:
            made.set_weights([given[weight] for weight in needed])
        except ValueError as err:
            raise ValueError(f"layer {made.name!r}: its weights in the file do not fit it ({err})") from None
    return model
