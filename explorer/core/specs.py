"""Network specs: the single description every other module works from.

A `ResNetSpec` names a network (family, version, depth, residual or plain, shortcut type,
classes); `plans.plan(spec)` expands it into the stem, the blocks and the head. This module
is the leaf of the package: it also holds the readers of loosely typed user input
(`whole_number`, `as_bool`) and the bounds every module shares (`MAX_DEPTH`, `MAX_VERSION`,
`MAX_SEED`).

Layer names are hierarchical and predictable, so tools can parse them:

    stem_conv, stem_bn, stem_relu, stem_pool          the stem (pool: ImageNet only)
    stage{S}_block{B}_conv{K}, _bn{K}, _relu{K}       unit K of block B in stage S (1-based)
    stage{S}_block{B}_shortcut                        projection shortcut (1x1 conv)
    stage{S}_block{B}_shortcut_bn                     its batch norm (ImageNet family)
    stage{S}_block{B}_shortcut_pad                    zero-pad shortcut (paper's option A)
    stage{S}_block{B}_add, stage{S}_block{B}_out      the residual sum and the ReLU after it
    head_bn, head_relu, head_pool, head_dense         the classifier head

A plain twin (`residual=False`) has exactly the same names minus the shortcut and add
layers: "plain" is a flag on the spec, never a second code path.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from explorer.core.checks import one_of

FAMILIES = ("cifar", "imagenet")
SHORTCUTS = ("projection", "zeropad")
MAX_DEPTH = 2000  # refuse absurd sizes before anything is built
MAX_VERSION = 2  # 1: post-activation basic blocks, 2: pre-activation bottlenecks
# Random seeds, of training runs and of the gradient probes alike: the widest every consumer
# takes (keras.utils.set_random_seed seeds NumPy's legacy generator, which stops at 2^32 - 1),
# so a run's config.json from before stays valid
MAX_SEED = 2**32 - 1
IMAGENET_STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


def net_name(depth, version, residual: bool, family: str = "cifar") -> str:
    """A net's display name, `ResNet-56 v1` or `Plain-56 v1` (a spec's, an import's summary's)."""
    kind = "ResNet" if residual else "Plain"
    return f"{kind}-{depth} v{version}" if family == "cifar" else f"{kind}-{depth}"


@dataclass(frozen=True)
class ResNetSpec:
    """Describes one network. Validated on construction.

    Args:
        depth: weighted layers, as in the paper's names (ResNet-56 has depth 56).
        version: 1 (post-activation basic blocks) or 2 (pre-activation bottlenecks);
            the ImageNet family is version 1 only.
        family: "cifar" (He et al. Sec. 4.2, 32x32 inputs) or "imagenet" (Table 1).
        residual: False builds the plain twin: same layers, no shortcuts and no add.
        shortcut: "projection" (1x1 conv where shapes change, the tutorial's code) or
            "zeropad" (strided identity plus zero channels, parameter-free).
        num_classes: size of the softmax.
    """

    depth: int = 20
    version: int = 1
    family: str = "cifar"
    residual: bool = True
    shortcut: str = "projection"
    num_classes: int = 10

    def __post_init__(self):
        validate(self)

    @property
    def name(self) -> str:
        """Display name such as `ResNet-56 v1` or `Plain-56 v1`."""
        return net_name(self.depth, self.version, self.residual, self.family)

    @property
    def slug(self) -> str:
        """File-safe name such as `resnet56_v1` or `plain56_v1`."""
        kind = "resnet" if self.residual else "plain"
        base = f"{kind}{self.depth}_v{self.version}" if self.family == "cifar" else f"{kind}{self.depth}"
        return base + ("_zeropad" if self.shortcut == "zeropad" else "")

    @property
    def num_blocks(self) -> int:
        """Blocks per stage for the CIFAR family (the paper's n)."""
        if self.family != "cifar":
            raise ValueError("num_blocks is defined for the CIFAR family only")
        return (self.depth - 2) // (6 if self.version == 1 else 9)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3) if self.family == "cifar" else (224, 224, 3)

    def twin(self) -> ResNetSpec:
        """The same network with the shortcuts flipped (residual <-> plain)."""
        return dataclasses.replace(self, residual=not self.residual)

    def to_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> ResNetSpec:
        return from_dict(cls, config, "spec fields")


def from_dict(cls, values: dict, what: str):
    """Builds dataclass `cls` from a dict, refusing unknown keys with a clear message.

    Args:
        cls: the dataclass to build.
        values: field name -> value.
        what: what the keys are, for the message (e.g. "spec fields").

    Returns:
        An instance of `cls`.

    Raises:
        ValueError: `values` is not a dict, has keys that are not fields of `cls`, or `cls`
            refuses the values (as `ResNetSpec` does).
    """
    if not isinstance(values, dict):
        raise ValueError(f"{what} must be a JSON object of name: value, got {type(values).__name__}")
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)}")
    return cls(**values)


def result_net(result: dict) -> ResNetSpec | None:
    """The net a study's result was measured on: its "net", a `ResNetSpec.to_config()` dict.

    Readers take the kind and the depth of a result's net from here, never from its display
    name (`lesion.name_apart` may rename it).

    Args:
        result: a lesion, landscape or overlay result.

    Returns:
        The `ResNetSpec`, or None for a result that carries no net (one made by hand).

    Raises:
        ValueError: the result's "net" describes no valid network.
    """
    config = result.get("net")
    return None if config is None else ResNetSpec.from_config(config)


def _short(value) -> str:
    """A value for a message: a 400-digit number from an API call is cut short."""
    text = str(value)
    return text if len(text) <= 20 else text[:20] + "..."


def is_whole(value) -> bool:
    """Whether `value` is an int, and not a bool (True is an int to Python, not to a user)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value, what: str) -> int:
    if is_whole(value):
        return value  # any size: the range checks that follow refuse a huge one
    if not isinstance(value, float) or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{what} must be a whole number, got {str(value)[:40]!r}")
    return int(value)


def whole_number(value, name: str, low: int, high: int) -> int:
    """A whole number from a page or API value (int, float or text) within [low, high].

    Args:
        value: the value as given, such as 56, 56.0 or "56".
        name: what the value is, for the message.
        low: the smallest value allowed.
        high: the largest value allowed.

    Returns:
        The value as an int.

    Raises:
        ValueError: not a finite whole number, or out of range.
    """
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float: out of any range we allow
        number = math.inf
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {str(value)[:40]!r}")
    return int(number)


def nearest_valid_depths(depth: int, version: int, family: str = "cifar") -> list[int]:
    """The valid depths just below and above `depth` (one if `depth` is below the smallest).

    Args:
        depth: the depth asked for.
        version: 1 (6n+2 depths) or 2 (9n+2); not used for the ImageNet family.
        family: "cifar" or "imagenet" (depths 18, 34, 50, 101 and 152).

    Returns:
        Up to two depths, ascending. CIFAR: the largest valid depth up to `depth` and the
        next one (none over `MAX_DEPTH`), or only the smallest when `depth` is below it.
        ImageNet: the nearest depths strictly below and above `depth`.
    """
    if family == "imagenet":
        valid = sorted(IMAGENET_STAGES)
        below = [d for d in valid if d < depth]
        above = [d for d in valid if d > depth]
        return ([below[-1]] if below else []) + ([above[0]] if above else [])
    step = 6 if version == 1 else 9
    smallest = step + 2
    if depth < smallest:
        return [smallest]
    low = 2 + step * ((depth - 2) // step)
    return [low, low + step] if low + step <= MAX_DEPTH else [low]


def validate(spec: ResNetSpec) -> None:
    """Raises ValueError with a message a user can act on."""
    depth = _as_int(spec.depth, "depth")
    version = _as_int(spec.version, "version")
    object.__setattr__(spec, "depth", depth)
    object.__setattr__(spec, "version", version)
    object.__setattr__(spec, "num_classes", _as_int(spec.num_classes, "num_classes"))
    one_of(spec.family, FAMILIES, "family")
    one_of(spec.shortcut, SHORTCUTS, "shortcut")
    if not isinstance(spec.residual, bool):
        raise ValueError(f"residual must be true or false, got {spec.residual!r}")
    if not 1 <= spec.num_classes <= 100_000:
        raise ValueError(f"num_classes must be between 1 and 100000, got {spec.num_classes}")
    if spec.family == "imagenet":
        if version != 1:
            raise ValueError("the ImageNet family has version 1 only")
        if depth not in IMAGENET_STAGES:
            near = nearest_valid_depths(depth, 1, "imagenet")
            plural = "depths are" if len(near) > 1 else "depth is"
            raise ValueError(
                f"depth {depth} is not an ImageNet ResNet (18, 34, 50, 101, 152); "
                f"the nearest valid {plural} {' and '.join(map(str, near))}")
        return
    if not 1 <= version <= MAX_VERSION:
        raise ValueError(f"version must be 1 or 2, got {version}")
    if depth <= 0:
        raise ValueError(f"depth must be positive, got {_short(depth)}")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth {_short(depth)} is too large: at most {MAX_DEPTH} layers are supported")
    step = 6 if version == 1 else 9
    if (depth - 2) % step or depth < step + 2:
        rule = "6n+2" if version == 1 else "9n+2"
        near = nearest_valid_depths(depth, version)
        near_text = " and ".join(map(str, near))
        plural = "depths are" if len(near) > 1 else "depth is"
        raise ValueError(
            f"depth {depth} is not {rule} for v{version}; the nearest valid {plural} {near_text}")


# ----------------------------------------------------------------------------- registry

REGISTRY: dict[str, ResNetSpec] = {
    "resnet20_v1": ResNetSpec(20, 1),
    "resnet32_v1": ResNetSpec(32, 1),
    "resnet44_v1": ResNetSpec(44, 1),
    "resnet56_v1": ResNetSpec(56, 1),
    "resnet110_v1": ResNetSpec(110, 1),
    "resnet1202_v1": ResNetSpec(1202, 1),
    "plain20_v1": ResNetSpec(20, 1, residual=False),
    "plain56_v1": ResNetSpec(56, 1, residual=False),
    "resnet20_v1_zeropad": ResNetSpec(20, 1, shortcut="zeropad"),
    "resnet29_v2": ResNetSpec(29, 2),
    "resnet56_v2": ResNetSpec(56, 2),
    "resnet164_v2": ResNetSpec(164, 2),
    "resnet1001_v2": ResNetSpec(1001, 2),
    "plain29_v2": ResNetSpec(29, 2, residual=False),
    "resnet18": ResNetSpec(18, 1, family="imagenet", num_classes=1000),
    "resnet34": ResNetSpec(34, 1, family="imagenet", num_classes=1000),
    "resnet50": ResNetSpec(50, 1, family="imagenet", num_classes=1000),
    "resnet101": ResNetSpec(101, 1, family="imagenet", num_classes=1000),
    "resnet152": ResNetSpec(152, 1, family="imagenet", num_classes=1000),
}


def get_spec(name: str) -> ResNetSpec:
    """Looks up a registered spec by name (`resnet56_v1`, `plain20_v1`, `resnet50`, ...)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}") from None


def make_spec(depth, version=1, family="cifar", residual=True, shortcut="projection",
              num_classes=None) -> ResNetSpec:
    """Builds a spec from loosely typed user input (UI, CLI, API), with clear errors.

    Args:
        depth: weighted layers, as an int or text ("56").
        version: 1 or 2, as an int or text ("2", "v2").
        family: "cifar" or "imagenet".
        residual: a flag as `as_bool` reads it (True, 1, "yes", ...); False for the plain twin.
        shortcut: "projection" or "zeropad".
        num_classes: size of the softmax; None for 10 (CIFAR) or 1000 (ImageNet).

    Returns:
        The validated `ResNetSpec`.

    Raises:
        ValueError: a value is malformed or out of range; for an invalid depth the message
            names the nearest valid ones.
    """
    one_of(family, FAMILIES, "family")
    if num_classes is None:
        num_classes = 10 if family == "cifar" else 1000
    if isinstance(depth, str):
        depth = depth.strip()
        if not depth.removeprefix("-").isdigit():
            raise ValueError(f"depth must be a whole number, got {depth!r}")
        depth = int(depth)
    if isinstance(version, str):
        version = version.strip().lower().lstrip("v")
        if not version.isdigit():
            raise ValueError(f"version must be 1 or 2, got {version!r}")
        version = int(version)
    return ResNetSpec(depth=depth, version=version, family=family, residual=as_bool(residual, "residual"),
                      shortcut=shortcut, num_classes=num_classes)


def as_bool(value, what: str) -> bool:
    """A flag from loosely typed input: True/False, 1/0, or "true"/"false"/"yes"/"no".

    Args:
        value: the input; text is read case-insensitively ("1" and "0" too, surrounding
            spaces ignored), and None reads as False.
        what: the flag's name, for the message.

    Returns:
        The flag as a bool.

    Raises:
        ValueError: `value` is none of the accepted forms.
    """
    if isinstance(value, str):
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if value.strip().lower() not in words:
            raise ValueError(f"{what} must be true or false, got {value!r}")
        return words[value.strip().lower()]
    if value in (True, False, None):
        return bool(value)
    raise ValueError(f"{what} must be true or false, got {value!r}")
