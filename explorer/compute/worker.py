"""A Dask worker's set-up, loaded with `dask worker ... --preload explorer.compute.worker`.

It runs in the worker's process before any task: TensorFlow quiet and with its oneDNN kernels
on (the worker has one thread, so one pass runs at a time, where they are safe and about 1.4x
faster on a CPU with AVX-512), then TensorFlow loaded, so the first task does not pay for it.
"""

from __future__ import annotations

from explorer.core import runtime


def dask_setup(worker) -> None:
    """Dask's preload hook: called once the worker exists, before it takes a task."""
    runtime.quiet_tensorflow()
    runtime.fast_training()  # turns back on what the app's `thread_safe_tensorflow` turned off
    import keras  # noqa: F401 - loaded now: the first visitor's task need not wait for it
