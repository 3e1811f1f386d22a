"""ImageNet photos through keras.applications: clear offline, the cached weights used as they are."""

import os
from pathlib import Path

import pytest


def test_imagenet_photos_fail_clearly_offline_or_work_online():
    from explorer.studies import imagenet

    try:
        label = imagenet.classify_imagenet(str(Path(__file__).parents[1] / "examples" / "red_car.png"))
    except ValueError as err:
        assert "cannot be downloaded" in str(err)
    else:
        assert len(label) == 5


@pytest.mark.slow
def test_imagenet_weights_in_the_keras_cache_load_without_a_download(tmp_path):
    """The weights are fetched (here: found in KERAS_HOME/models, as keras.applications
    caches them) before BUILD_LOCK is taken, and the model gets exactly those weights."""
    import subprocess
    import sys

    script = """
import os, h5py, numpy as np, keras
from keras.src.legacy.saving import legacy_h5_format
reference = keras.applications.ResNet50(weights=None)
path = os.path.join(os.environ["KERAS_HOME"], "models", "resnet50_weights_tf_dim_ordering_tf_kernels.h5")
os.makedirs(os.path.dirname(path))
with h5py.File(path, "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, reference)
from explorer.studies import imagenet
model = imagenet._imagenet_model(50)
same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), reference.get_weights()))
print("same weights", same)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1],
                            env={**os.environ, "KERAS_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"},
                            capture_output=True, text=True, timeout=600, check=False)
    assert "same weights True" in result.stdout, result.stderr[-2000:]
