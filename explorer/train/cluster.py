"""Training on several machines: the cluster named by `TF_CONFIG`, checked, and its engine started.

A user names the cluster the way TensorFlow does, in the `TF_CONFIG` environment variable of
each worker: every worker's `host:port`, and this worker's index. The first worker is the
chief: it alone writes the run's files into `--out`; the others train in a temporary copy
of the run folder (see `run_folder`), so a restarted cluster resumes from one backup.

The engine is Keras' own for several hosts: `keras.distribution.DataParallel` over JAX's
multi-process runtime (`keras.distribution.initialize`, the coordinator at the first worker's
address), with Gloo for the collectives between CPUs. TensorFlow's MultiWorkerMirroredStrategy
is not used: under Keras 3.15 and TensorFlow 2.21, `model.fit` fails with it before the first
step even when the strategy is made at program start ("ValueError: Attempt to convert a value
(PerReplica:{...}) with an unsupported type (<class '...values.PerReplica'>) to a Tensor",
from the trainer's symbolic build; keras-team/keras#20585).

`batch_size` stays the global batch: each of N workers trains on its 1/N of every batch (the
rows `index * batch_size / N` onwards), so the learning rate and its schedule mean what they
mean on one machine. Nothing here imports Keras or JAX before `start`: the backend must be
chosen before Keras is first imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py

ENV = "TF_CONFIG"
# What a worker that is not the chief copies from the shared run folder before it trains:
# enough for `training.train` to reach the chief's decision (new run, resume at epoch N, done).
RUN_STATE = ("config.json", "history.json", "model.keras", "backup")

_current: Cluster | None = None  # the cluster this process joined (see `start`)


@dataclass(frozen=True)
class Cluster:
    """The workers of a run and this process's place among them.

    Args:
        workers: every worker's "host:port", the chief's (and JAX coordinator's) first.
        index: this worker's position in `workers`.
    """

    workers: tuple[str, ...]
    index: int

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def coordinator(self) -> str:
        return self.workers[0]


def _address(value) -> str:
    host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not (host and sep and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f'{ENV}: each worker must be "host:port" with a port from 1 to 65535, got {value!r}')
    return value


def parse(text: str) -> Cluster:
    """The cluster a `TF_CONFIG` value names.

    Args:
        text: JSON such as `{"cluster": {"worker": ["host1:12345", "host2:12345"]},
            "task": {"type": "worker", "index": 0}}`.

    Returns:
        The `Cluster`.

    Raises:
        ValueError: not JSON; jobs other than "worker" (chief, ps, evaluator: the first
            worker is the chief here); no workers, a worker not "host:port", a worker named
            twice; a task that is not a worker or an index outside the list.
    """
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{ENV} is not JSON ({err})") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster"), dict) \
            or not isinstance(value.get("task"), dict):
        raise ValueError(f'{ENV} must be an object with "cluster" and "task", got {text[:200]!r}')
    jobs = value["cluster"]
    others = sorted(set(jobs) - {"worker"})
    if others:
        raise ValueError(f'{ENV}: only "worker" jobs are supported (the first worker is the chief), '
                         f"got {others}")
    workers = jobs.get("worker")
    if not isinstance(workers, list) or not workers:
        raise ValueError(f'{ENV}: "cluster" needs a non-empty "worker" list of "host:port"')
    workers = tuple(_address(w) for w in workers)
    if len(set(workers)) != len(workers):
        raise ValueError(f"{ENV}: a worker is named twice in {list(workers)}")
    task = value["task"]
    if task.get("type") != "worker":
        raise ValueError(f'{ENV}: "task" must have "type": "worker", got {task.get("type")!r}')
    index = task.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(workers):
        raise ValueError(f'{ENV}: "task" "index" must be a whole number from 0 to {len(workers) - 1}, '
                         f"got {index!r}")
    return Cluster(workers, index)


def from_env(environ=None) -> Cluster | None:
    """The cluster `TF_CONFIG` names in `environ` (default `os.environ`); None when unset or empty.

    Raises:
        ValueError: see `parse`.
    """
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    return parse(text) if text else None


def per_worker_batch(batch_size: int, workers: int) -> int:
    """The rows of each global batch of `batch_size` one of `workers` workers trains on.

    Raises:
        ValueError: `batch_size` (the global batch) does not split evenly over the workers.
    """
    if batch_size % workers:
        raise ValueError(f"--batch-size is the global batch and must split evenly over the {workers} "
                         f"workers, got {batch_size}; try {max(workers, batch_size // workers * workers)}")
    return batch_size // workers


def start(cluster: Cluster) -> None:
    """Joins the cluster: JAX as Keras' backend, its multi-process runtime, data parallelism.

    Call it before anything imports Keras (`training` does): the backend is fixed then. It
    returns once every worker has joined (JAX waits up to 5 minutes for them).

    Raises:
        ValueError: `KERAS_BACKEND` names another backend, Keras already runs on another
            one, JAX is not installed, or the cluster cannot be joined.
    """
    global _current
    keras_module = sys.modules.get("keras")
    backend = keras_module.backend.backend() if keras_module else os.environ.get("KERAS_BACKEND", "jax")
    if backend != "jax":
        raise ValueError(f"a cluster run ({ENV} set) trains under Keras' JAX backend, not {backend}: "
                         "MultiWorkerMirroredStrategy fails under Keras 3's model.fit "
                         "(keras-team/keras#20585); unset KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "jax"
    try:
        # deferred: JAX only for a cluster run, and it may be missing (the error says how to install it)
        import jax
    except ImportError:
        raise ValueError(f"a cluster run ({ENV} set) needs JAX: pip install jax==0.7.2") from None
    import keras  # deferred: after KERAS_BACKEND is set, and importing this module must not load Keras

    # CPUs have no collectives of their own across processes; GPUs use NCCL and ignore this
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(cluster.coordinator, cluster.size, cluster.index)
    except Exception as err:  # noqa: BLE001 - JAX raises its runtime's errors (timeouts, bind failures)
        raise ValueError(f"worker {cluster.index} cannot join the cluster coordinated at "
                         f"{cluster.coordinator}: "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    # the workers cut their own shards (see shard()): Keras need not, and cannot for a generator
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False))
    _current = cluster


def shard() -> tuple[int, int]:
    """(this worker's index, the number of workers): (0, 1) outside a cluster run."""
    return (_current.index, _current.size) if _current else (0, 1)


def log_shard(epoch: int, images) -> None:
    """Says which training images begin this worker's shard of an epoch (the runs' logs, and
    the test, read that the workers trained on different images)."""
    index, size = shard()
    shown = ", ".join(str(int(i)) for i in images[:4])
    print(f"worker {index} of {size}, epoch {epoch + 1}: shard starts with training images {shown}",
          flush=True)


@contextlib.contextmanager
def run_folder(out, cluster: Cluster | None):
    """The folder this process trains in: `out` for the chief (or outside a cluster), else a
    temporary copy of the run's state in `out`, removed afterwards.

    The copy gives every worker the chief's starting point (new run, resumed epoch, finished)
    while only the chief writes into `out`: its epochs cannot end before the others' do, so
    nothing in `out` moves while they copy it.
    """
    if cluster is None or cluster.chief:
        yield out
        return
    shared = Path(out)
    folder = Path(tempfile.mkdtemp(prefix=f"explorer-worker{cluster.index}-"))
    try:
        for name in RUN_STATE:
            source = shared / name
            if source.is_dir():
                shutil.copytree(source, folder / name)
            elif source.is_file():
                shutil.copy2(source, folder / name)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def weights_digest(model_path) -> str | None:
    """SHA-256 over the weight arrays of a `.keras` file, in their stored order: the workers
    of one run end with the same digest. None when there is no file."""
    path = Path(model_path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw, h5py.File(raw) as weights:
        def add(name, item):
            if isinstance(item, h5py.Dataset):
                digest.update(name.encode())
                digest.update(item[()].tobytes())

        weights.visititems(add)
    return digest.hexdigest()[:16]
