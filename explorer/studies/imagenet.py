"""ImageNet photos: the top classes of a photo from a keras.applications ResNet with
ImageNet weights (downloaded once into the Keras cache; offline, a clear message instead).

The photo is decoded by `images.prepare`, the same defensive path as every upload, at 224x224.
"""

from __future__ import annotations

import functools

import numpy as np

from explorer.data.cifar import host_reachable, keras_home
from explorer.data.images import prepare

IMAGENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"  # Keras's


@functools.lru_cache(maxsize=1)
def _imagenet_model(depth: int):
    import keras  # deferred: importing this module must not load Keras

    builders = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101,
                152: keras.applications.ResNet152}
    weights = keras_home() / "models" / f"resnet{depth}_weights_tf_dim_ordering_tf_kernels.h5"
    if depth in builders and not weights.exists() and not host_reachable("https://storage.googleapis.com"):
        raise ValueError("the ImageNet weights cannot be downloaded here (no internet). Online, this "
                         "works with keras.applications.")
    from explorer.nets.models import BUILD_LOCK  # deferred: importing this module must not load TensorFlow

    if depth not in builders:
        raise ValueError("keras.applications ships ImageNet weights for ResNet-50, 101 and 152")
    try:
        # the download (about 100 MB, no timeout in get_file) happens before BUILD_LOCK, which
        # every model build and checkpoint load of the app waits for; the same file and cache
        # as keras.applications' weights="imagenet"
        path = keras.utils.get_file(weights.name, IMAGENET_WEIGHTS_URL + weights.name, cache_subdir="models")
        with BUILD_LOCK:  # its initializers draw from the global random state (see models)
            return builders[depth](weights=path)
    except Exception as err:  # noqa: BLE001 - urllib, HTTP and file errors alike
        raise ValueError("the ImageNet weights cannot be downloaded here (no internet?): "
                         f"{type(err).__name__}. Online, this works with keras.applications.") from None


def classify_imagenet(image, depth: int = 50, top: int = 5) -> dict:
    """Top classes of a photo from a keras.applications ResNet with ImageNet weights.

    Args:
        image: anything `prepare` accepts; it is center-cropped and resized to 224x224.
        depth: 50, 101 or 152, the depths keras.applications ships weights for.
        top: how many classes to return.

    Returns:
        {ImageNet class name: probability} for the `top` classes, most likely first.

    Raises:
        ValueError: the image cannot be read, `depth` has no weights, or the weights or the
            class names cannot be downloaded.
    """
    import keras  # deferred: importing this module must not load Keras

    pixels = prepare(image, size=224).astype(np.float32)  # the same defensive decoding
    model = _imagenet_model(int(depth))
    probs = model.predict(keras.applications.resnet50.preprocess_input(pixels[None]), verbose=0)
    try:
        decoded = keras.applications.resnet50.decode_predictions(probs, top=top)[0]
    except Exception as err:  # noqa: BLE001 - the class index is another download
        raise ValueError("the ImageNet class names cannot be downloaded here: "
                         f"{type(err).__name__}") from None
    return {name: float(p) for _, name, p in decoded}
