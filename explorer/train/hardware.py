"""What the app trains on and what a training job costs there, in words for the Train tab; and,
where `nvidia-smi` finds a GPU that TensorFlow does not see, the reason TensorFlow gives.

The CPU cost comes from one measured figure, scaled by each net's multiply-adds: the training
throughput of ResNet-20 v1 that `python bench/train_throughput.py` printed on 2 CPU cores
(README, "Measured"). No GPU figure has been measured, so on a GPU the note names the device
and the command that measures it, and gives no number.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys

from explorer.core.costs import summarize
from explorer.core.specs import make_spec
from explorer.train.config import PAGE_DEFAULTS

# ResNet-20 v1, fp32, batch 128, training step only, as our training processes run it
# (oneDNN on): `python bench/train_throughput.py --rounds 2 --steps 50 --precisions float32`,
# 2026-12-01, 2 CPU cores (AMD EPYC, AVX2, no AVX-512), no GPU: 218 and 156 img/s, their mean
# (README, "Measured", session 10). Session 2's host (AVX-512) ran 628 img/s: a CPU with
# AVX-512 or bf16 is faster than this figure says.
CPU_IMAGES_PER_SECOND = 187.0
CPU_FIGURE_CORES = 2
EPOCH_IMAGES = 50_000  # CIFAR-10's training set: one epoch over all of it
NOTE_DEPTHS = (20, 56, 110)  # v1 nets the note prices


def epoch_minutes(depth: int, version: int = 1, images: int = EPOCH_IMAGES) -> float:
    """Minutes one epoch of `images` takes on the CPU the figure was measured on: ResNet-20's
    measured throughput, divided by how many times its multiply-adds the net needs.

    Args:
        depth: a valid depth for `version`.
        version: 1 or 2.
        images: training images per epoch.

    Returns:
        Minutes for the training step alone (start-up and the test pass come on top).

    Raises:
        ValueError: `depth` or `version` is not a valid net.
    """
    flops = summarize(make_spec(depth, version))["totals"]["flops"]
    reference = summarize(make_spec(20, 1))["totals"]["flops"]
    return images / (CPU_IMAGES_PER_SECOND * reference / flops) / 60


def cost_note(device: str) -> str:
    """What a job costs on `device` (as `devices.device_name` names it), one Markdown line."""
    if device.startswith("GPU"):
        return (f"**Hardware: {device}.** No training figure has been measured on this GPU yet: "
                "`python -m explorer bench train --depth 20` prints its images per second.")
    prices = ", ".join(f"ResNet-{depth} {epoch_minutes(depth):.1f}" for depth in NOTE_DEPTHS)
    return (f"**Hardware: {device}.** Minutes per epoch of all {EPOCH_IMAGES:,} training images "
            f"on {CPU_FIGURE_CORES} CPU cores: {prices} (the default {PAGE_DEFAULTS['subset']:,} images "
            f"take {PAGE_DEFAULTS['subset'] / EPOCH_IMAGES:.0%} of that). "
            f"Derived from {CPU_IMAGES_PER_SECOND:.0f} images/s for ResNet-20 v1, printed by "
            "`python bench/train_throughput.py`, and scaled by each net's multiply-adds; "
            "start-up and the test pass come on top.")


def tensorflow_gpu_log() -> str:
    """What TensorFlow says about the GPU as it starts, from a fresh process (its C++ log is
    printed once per process, before any Python can catch it): the lines on CUDA and GPUs."""
    code = "import tensorflow as tf; print('GPUS', len(tf.config.list_physical_devices('GPU')))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"TensorFlow could not be asked: {err}"
    lines = [line.strip() for line in (out.stderr + out.stdout).splitlines()
             if re.search(r"cuda|gpu|dlopen|driver|libcud", line, re.IGNORECASE) and "GPUS" not in line]
    return "\n".join(lines[-4:]) or "TensorFlow lists no GPU and says nothing about why"


def gpu_notice(nvidia_smi: str | None, tensorflow_gpus: int, reason=tensorflow_gpu_log,
               built_with_cuda: bool = True) -> str:
    """A warning when the machine has an NVIDIA GPU (`nvidia-smi` on the PATH) that TensorFlow
    does not use, with TensorFlow's reason; "" otherwise.

    Args:
        nvidia_smi: the path of `nvidia-smi`, or None where there is none.
        tensorflow_gpus: how many GPUs TensorFlow lists.
        reason: returns TensorFlow's own words (called only when needed: it starts a process).
        built_with_cuda: whether this TensorFlow was built with CUDA.
    """
    if not nvidia_smi or tensorflow_gpus:
        return ""
    why = ("this TensorFlow was built without CUDA" if not built_with_cuda else reason())
    quoted = "\n".join(f"> {line}" for line in why.splitlines())
    return ("**This machine has an NVIDIA GPU (`nvidia-smi` is present), but TensorFlow does not see "
            "it, so jobs train on the CPU.** A GPU host installs `requirements-gpu.txt` "
            f"(`tensorflow[and-cuda]`). TensorFlow says:\n\n{quoted}")


@functools.lru_cache(maxsize=1)
def train_tab_note() -> str:
    """The Train tab's line on hardware and cost, and the GPU notice where one is due."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    # deferred: importing this module must not load TensorFlow
    from explorer.train.devices import device_name

    notice = gpu_notice(shutil.which("nvidia-smi"), len(tf.config.list_physical_devices("GPU")),
                        built_with_cuda=tf.test.is_built_with_cuda())
    return "\n\n".join(part for part in (cost_note(device_name()), notice) if part)
