"""Where a run trains: the device the page names (`device_name`), the distribution strategy
(`choose_strategy`) and the precision `auto` picks (`resolve_precision`). Moved out of
`training` so the recipe stays one module of at most 400 lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from explorer.core.runtime import has_gpu
from explorer.nets.models import tensorflow_backend


def choose_strategy():
    """Several GPUs (or several logical CPU devices, for tests): MirroredStrategy; otherwise
    the default strategy. None under other Keras backends (one device, or `cluster`'s
    data parallelism under JAX).

    Raises:
        ValueError: TF_CONFIG is set under TensorFlow: several machines train through
            `python -m explorer train`, under JAX (see `cluster` for why not
            MultiWorkerMirroredStrategy).
    """
    if not tensorflow_backend():
        return None
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    if os.environ.get("TF_CONFIG"):
        raise ValueError("TF_CONFIG is set: a cluster run is started by `python -m explorer train` on "
                         "each worker and trains under JAX (explorer/train/cluster.py); unset TF_CONFIG here")
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def device_name() -> str:
    """What trains here, for the page and the logs: "GPU: <name>" (x N for several) or
    "CPU (<n> cores)"; under another Keras backend, its name in brackets after that."""

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # deferred: only on the JAX backend, which may be missing

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            return f"GPU: {gpus[0].device_kind}" + (f" x{len(gpus)}" if len(gpus) > 1 else "") + " (jax)"
        return f"CPU ({os.cpu_count()} cores) (jax)"
    if backend != "tensorflow":
        return f"{backend}"
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        return f"GPU: {name}" + (f" x{len(gpus)}" if len(gpus) > 1 else "")
    return f"CPU ({os.cpu_count()} cores)"


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """"auto": fp16 mixed precision on a GPU; bf16 on a CPU with native bf16 instructions
    (with the fused batch norm, bench/train_throughput.py measured bf16 at 1.48x fp32
    here, where it had been no faster with Keras' unfused batch norm); fp32 otherwise."""
    if precision != "auto":
        return precision

    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if _cpu_has_bf16() else "float32"
