"""The tf.distribute path on CPU: two logical devices stand in for two GPUs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from explorer.data.cifar import synthetic
from explorer.train.config import TrainConfig
from explorer.train.devices import choose_strategy
from explorer.train.training import train
strategy = choose_strategy()
config = TrainConfig(depth=8, epochs=2, subset=256, test_subset=64, batch_size=32, grad_every=4,
                     steps_per_execution=4)  # the recipe drops it to 1 under Mirrored
result = train(config, sys.argv[1], data=synthetic(256, 64), verbose=0)
print(json.dumps({"strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync,
                  **result}))
"""


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")], cwd=ROOT, check=False,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["strategy"] == "MirroredStrategy" and result["replicas"] == 2
    assert result["epochs_finished"] == 2 and 0 <= result["test_accuracy"] <= 1
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["epochs"]) == 2 and history["grad_norms"]["steps"]
