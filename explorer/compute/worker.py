"""A Dask worker's set-up, loaded with `dask worker ... --preload explorer.compute.worker`.

Importing it sets TensorFlow up before anything in the worker can load it: quiet, and with its
oneDNN kernels on (the worker has one thread, so one pass runs at a time, where they are safe
and about 1.4x faster on a CPU with AVX-512). That happens at import, not in `dask_setup`: Dask
calls `dask_setup` once the worker has started, when a first task may already be running.
Then `dask_setup` loads TensorFlow, so the first visitor's task does not pay for it.
"""

from __future__ import annotations

from explorer.core import runtime

runtime.quiet_tensorflow()
runtime.fast_training()  # turns back on what the app's `thread_safe_tensorflow` turned off


def dask_setup(worker) -> None:
    """Dask's preload hook: called once the worker has started."""
    import keras  # noqa: F401 - loaded now: the first visitor's task need not wait for it
