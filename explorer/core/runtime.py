"""How TensorFlow runs in this process, set before its first import (it reads these settings
once, then): its log level, and its oneDNN CPU kernels per kind of process, on where one model
trains in one thread, off where eager passes run from several threads.
"""

from __future__ import annotations

import os


def quiet_tensorflow():
    """Keeps TensorFlow's and absl's start-up chatter off the terminal, unless set outside;
    call before TensorFlow's first import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def fast_training():
    """Turns TensorFlow's oneDNN kernels on for a training process, unless set outside; call
    before TensorFlow's first import.

    TensorFlow enables them by itself only on CPUs with AVX-512 and the like; on this project's
    AVX2-only 2-core machine they trained ResNet-20 2.82x as fast (median of 3 rounds,
    `python bench/onednn.py`). A training process runs one model in one thread, where they
    are safe; processes that run several at once turn them off (`thread_safe_tensorflow`),
    and a training process started by one of those turns them back on.
    """
    if os.environ.pop(THREADS_MARK, None):  # off for the parent's threads, not by the user
        os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


# Set in the environment when `thread_safe_tensorflow` (not the user) turned oneDNN off.
THREADS_MARK = "EXPLORER_ONEDNN_OFF_FOR_THREADS"


def thread_safe_tensorflow():
    """Turns TensorFlow's oneDNN kernels off in a process that runs eager passes from several
    threads (the app, the commands that read checkpoints, the tests), unless set outside;
    call before TensorFlow's first import.

    With them on, such processes corrupt their heap and die. The app crashed so twice in the
    test suite with them turned on (session 9: "malloc_consolidate(): invalid chunk size").
    TensorFlow turns them on by itself on CPUs with AVX-512, and on such a Xeon (session 14)
    `python docs/screenshots.py`'s lesion study killed the app twice ("corrupted double-linked
    list", "malloc_consolidate(): unaligned fastbin chunk detected") and ran through with them
    off; there the tests' gradient probes aborted both pytest workers in
    `conv2d_backprop_input`. The mark lets a training process started by such a process (the
    app's jobs, a test's `train` command) turn them back on (`fast_training`).
    """
    if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
        os.environ[THREADS_MARK] = "1"


def has_gpu() -> bool:
    """Whether Keras' backend sees a GPU: the one test behind precision, landscape sizes and
    budgets."""
    import keras  # here, not at the top: light commands that set TensorFlow up never load Keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # deferred: importing this module must not load JAX

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch  # deferred: importing this module must not load PyTorch

        return torch.cuda.is_available()
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    return bool(tf.config.list_physical_devices("GPU"))
