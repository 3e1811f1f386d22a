"""Bring your own ResNet (issue 35): the tutorial's own code (`../shared/reference/tutorial_recipe.py`,
imported from there, never copied) builds its nets, trains them a few steps on generated images
and saves them as its ModelCheckpoint does; `nets.importer` makes each a model of this app, and
the imported model, fed raw pixels, predicts what the tutorial's model predicts on the images
preprocessed as the tutorial does. Files that are not such a net are refused, each with its own
message, through the function and the command line, and leave nothing behind."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.common import REFERENCE, tutorial_module
from explorer.data.cifar import synthetic
from explorer.nets import import_files, importer
from tests.test_cli import assert_clean_failure, run_cli, run_main

SUMMARY = {"depth", "version", "residual", "shortcut", "params", "max_abs_difference", "preprocess"}


@pytest.fixture(scope="module")
def tutorial():
    """The tutorial's module, imported from its own file."""
    if not REFERENCE.is_file():
        pytest.skip(f"the tutorial's code is not at {REFERENCE}")
    return tutorial_module()


def tutorial_inputs(images: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The tutorial's preprocessing: x/255 minus the training images' per-pixel mean."""
    return images.astype("float32") / 255 - mean


@pytest.fixture(scope="module")
def data():
    """The generated images the nets train on, and their per-pixel mean (the tutorial's way)."""
    dataset = synthetic()
    return dataset, (dataset.x_train.astype(np.float64) / 255).mean(axis=0).astype(np.float32)


def train_and_save(tutorial, data, folder: Path, version: int, depth: int):
    """The tutorial's net, trained a few steps (batch norm statistics move off 0 and 1), saved
    by its ModelCheckpoint as .keras and as .h5. Returns (model, {ext: file})."""
    import keras
    from tensorflow.keras.callbacks import ModelCheckpoint

    dataset, mean = data
    model = (tutorial.resnet_v1 if version == 1 else tutorial.resnet_v2)((32, 32, 3), depth)
    # the tutorial's compile; eagerly, as a few steps train faster so than traced
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"], run_eagerly=True)
    name = f"cifar10_ResNet{depth}v{version}_model.{{epoch:03d}}"
    checkpoints = [ModelCheckpoint(filepath=str(folder / f"{name}.{ext}"), monitor="val_accuracy",
                                   save_best_only=True) for ext in ("keras", "h5")]
    x, y = tutorial_inputs(dataset.x_train[:128], mean), keras.utils.to_categorical(dataset.y_train[:128], 10)
    val = (tutorial_inputs(dataset.x_test[:64], mean), keras.utils.to_categorical(dataset.y_test[:64], 10))
    model.fit(x, y, batch_size=32, epochs=1, validation_data=val, callbacks=checkpoints, verbose=0)
    moved = [np.abs(layer.moving_variance.numpy() - 1).max() for layer in model.layers
             if "batch_norm" in layer.name]
    assert min(moved) > 1e-3, moved  # each batch norm's statistics are its own, not the initial ones
    return model, {ext: folder / f"cifar10_ResNet{depth}v{version}_model.001.{ext}"
                   for ext in ("keras", "h5")}


def assert_same_predictions(model, run: Path, data):
    """The run's model on raw pixels against the tutorial's model on its preprocessed images."""
    from explorer.nets.checkpoints import load_checkpoint

    dataset, mean = data
    images = dataset.x_test[:256]
    ours = np.asarray(load_checkpoint(run / "model.keras")(images, training=False))
    theirs = np.asarray(model(tutorial_inputs(images, mean), training=False))
    assert np.abs(ours - theirs).max() <= 1e-4


@pytest.fixture(scope="module")
def saved(tutorial, data, tmp_path_factory):
    """`train_and_save` of (version, depth), once per module."""
    made = {}

    def get(version: int, depth: int):
        if (version, depth) not in made:
            folder = tmp_path_factory.mktemp(f"resnet{depth}v{version}")
            made[version, depth] = train_and_save(tutorial, data, folder, version, depth)
        return made[version, depth]
    return get


@pytest.fixture(scope="module")
def resnet20(saved):
    return saved(1, 20)


PARAMS = {(1, 20): 274_442, (2, 29): 849_002, (1, 56): 861_770}  # as the tutorial's model.summary() counts


@pytest.mark.parametrize("version, depth, ext", [
    (1, 20, "keras"), (1, 20, "h5"), (2, 29, "keras"), (2, 29, "h5"),
    pytest.param(1, 56, "keras", marks=pytest.mark.slow)])
def test_the_tutorials_nets_import_with_its_preprocessing(saved, data, version, depth, ext, tmp_path):
    model, files = saved(version, depth)
    result = importer.import_model(files[ext], tmp_path / "run", data="synthetic")
    assert SUMMARY <= set(result)
    net = (result["depth"], result["version"], result["residual"], result["shortcut"])
    assert net == (depth, version, True, "projection")
    assert result["params"] == model.count_params() == PARAMS[version, depth]
    assert result["preprocess"] == "tutorial" and result["max_abs_difference"] <= 1e-4
    assert_same_predictions(model, tmp_path / "run", data)
    record = json.loads((tmp_path / "run" / "import.json").read_text())
    assert record["format"] == ext and record["file"] == files[ext].name and record["proof"]["images"] == 256
    assert record["mapping"][0] == {"file": model.layers[1].name, "model": "stem_conv"}
    assert record["max_logit_difference"] <= 1e-3


def keras2(value):
    """A Keras 3 config in the form Keras 2 (tf.keras) wrote into .h5 files: no module or registered
    names, dtypes as text, inbound nodes as [[name, 0, 0, {}], ...], batch_input_shape."""
    if isinstance(value, list):
        return [keras2(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("class_name") == "DTypePolicy":
        return "float32"
    out = {key: keras2(inner) for key, inner in value.items() if key not in ("module", "registered_name")}
    if "inbound_nodes" in value:
        tensors = value["inbound_nodes"][0]["args"] if value["inbound_nodes"] else []
        names = [t["config"]["keras_history"][0] for t in (tensors[0] if tensors and isinstance(
            tensors[0], list) else tensors)]
        out["inbound_nodes"] = [[[name, 0, 0, {}] for name in names]] if names else []
    if "batch_shape" in out:
        out["batch_input_shape"] = out.pop("batch_shape")
    if "input_layers" in out:
        out["input_layers"], out["output_layers"] = [out["input_layers"]], [out["output_layers"]]
    return out


def test_a_keras2_h5_file_imports(resnet20, data, tmp_path):
    import h5py

    model, files = resnet20
    old = tmp_path / "keras2.h5"
    old.write_bytes(files["h5"].read_bytes())
    with h5py.File(old, "r+") as handle:
        handle.attrs["model_config"] = json.dumps(keras2(json.loads(handle.attrs["model_config"])))
        handle.attrs["keras_version"] = "2.15.0"
    result = importer.import_model(old, tmp_path / "run", data="synthetic")
    assert result["params"] == 274_442 and result["max_abs_difference"] <= 1e-4
    assert_same_predictions(model, tmp_path / "run", data)


def test_a_wrong_mapping_is_refused_by_the_proof(resnet20, tmp_path, monkeypatch):
    """Two convolutions of the same shape swapped: the proof sees it, and nothing is written."""
    recognise = importer.import_graph.recognise

    def swapped(*args):
        spec, pairs, logits = recognise(*args)
        first, second = (i for i, pair in enumerate(pairs) if pair[1].startswith("stage1_block1_conv"))
        (a, *ours_a), (b, *ours_b) = pairs[first], pairs[second]
        pairs[first], pairs[second] = (a, *ours_b), (b, *ours_a)
        return spec, pairs, logits

    monkeypatch.setattr(importer.import_graph, "recognise", swapped)
    refused = r"does not (predict|compute) what .*: their (softmax outputs|logits) differ by up to"
    with pytest.raises(ValueError, match=refused):
        importer.import_model(resnet20[1]["keras"], tmp_path / "run", data="synthetic")
    assert not (tmp_path / "run").exists()


def test_the_command_refuses_a_truncated_file_in_one_line(resnet20, tmp_path):
    path = truncated_file(tmp_path, resnet20)
    result = run_cli("import", path, "--out", tmp_path / "run", "--json")
    assert result.returncode == 2 and not result.stdout
    message = f"{path.name} is not a complete .keras file: its zip archive is truncated or corrupt " \
              "(BadZipFile)"
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "run").exists()


def test_the_cli_prints_the_summary_and_the_run_is_read_like_a_training_run(resnet20, data, tmp_path,
                                                                             monkeypatch):
    _, files = resnet20
    mean = tmp_path / "mean.npy"
    np.save(mean, data[1])
    result = run_main("import", files["keras"], "--mean", mean, "--out", tmp_path / "run", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(printed) == SUMMARY and printed["preprocess"] == "tutorial"
    assert printed["max_abs_difference"] <= 1e-4
    evaluated = run_main("evaluate", tmp_path / "run" / "model.keras", "--data", "synthetic", "--limit", 50)
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["n"] == 50
    monkeypatch.setattr("explorer.shipped.pretrained.PRETRAINED", tmp_path / "shipped")
    shipped = run_main("ship", tmp_path / "run", "--name", "mine20", "--data", "synthetic")
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout)["depth"] == 20


@pytest.mark.parametrize("preprocess", ["tutorial-no-mean", "raw"])
def test_other_preprocessing_is_stored_in_the_model(resnet20, data, preprocess, tmp_path):
    from explorer.nets.checkpoints import load_checkpoint

    model, files = resnet20
    result = importer.import_model(files["h5"], tmp_path / "run", preprocess=preprocess, data="synthetic")
    assert result["preprocess"] == preprocess and result["max_abs_difference"] <= 1e-4
    images = data[0].x_test[:64]
    fed = images.astype("float32") / 255 if preprocess == "tutorial-no-mean" else images.astype("float32")
    ours = load_checkpoint(tmp_path / "run" / "model.keras")(images, training=False)
    assert np.abs(np.asarray(ours) - np.asarray(model(fed, training=False))).max() <= 1e-4


def test_a_plain_net_of_this_app_imports_as_plain(tmp_path):
    from explorer.core.specs import ResNetSpec
    from explorer.nets.models import build_model

    path = tmp_path / "plain20.keras"
    build_model(ResNetSpec(20, 1, residual=False)).save(path)
    upload = tmp_path / "upload-3f9a"  # as the page hands an upload over: a name without .keras
    upload.write_bytes(path.read_bytes())
    result = importer.import_model(upload, tmp_path / "run", data="synthetic")
    assert (result["residual"], result["shortcut"], result["preprocess"]) == (False, "none", "own")
    assert result["params"] == 271_786 and result["max_abs_difference"] == 0
    refused = run_main("import", path, "--preprocess", "tutorial", "--out", tmp_path / "again")
    assert_clean_failure(refused, "a checkpoint of this app")


# ----------------------------------------------------------------------------- refusals


def lambda_file(folder: Path) -> Path:
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0, name="scale_pixels")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(16, 3, padding="same")(x))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(folder / "lambda.keras")
    return folder / "lambda.keras"


def vgg_file(folder: Path) -> Path:
    import keras

    conv = [keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
            for filters in (32, 32, 64, 64)]
    vgg = keras.Sequential([keras.Input((32, 32, 3)), *conv[:2], keras.layers.MaxPooling2D(), *conv[2:],
                            keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                            keras.layers.Dense(10, activation="softmax")])
    vgg.save(folder / "vgg.h5")
    return folder / "vgg.h5"


def truncated_file(folder: Path, resnet20) -> Path:
    whole = resnet20[1]["keras"].read_bytes()
    (folder / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    return folder / "truncated.keras"


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def bomb_file(folder: Path) -> Path:
    with zipfile.ZipFile(folder / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", bytes(4 * 2**20))  # 4 MB of zeros: a few kB packed
    return folder / "bomb.keras"


def weights_only_file(folder: Path) -> Path:
    import keras

    net = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    net.save_weights(folder / "net.weights.h5")
    return folder / "net.weights.h5"


REFUSALS = {
    "not a model": (lambda folder, _: write(folder / "notes.keras", b"just text" * 10),
                    "neither a .keras file (a zip archive) nor a legacy .h5 file", {}),
    "weights only": (lambda folder, _: weights_only_file(folder), "holds weights only, no model", {}),
    "lambda": (lambda folder, _: lambda_file(folder), "layer 'scale_pixels' is a Lambda layer", {}),
    "truncated": (truncated_file, "truncated or corrupt", {}),
    "vgg": (lambda folder, _: vgg_file(folder), "not a CIFAR ResNet", {}),
    "oversized": (lambda _, resnet20: resnet20[1]["keras"], "a model file may be at most 1.0 MB",
                  {"MAX_IMPORT_BYTES": 2**20}),
    "bomb": (lambda folder, _: bomb_file(folder), "refused unread (a zip bomb?)",
             {"MAX_UNPACKED_BYTES": 2**20}),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_file_gets_its_own_message_and_leaves_nothing(case, resnet20, tmp_path, monkeypatch):
    make, needle, bounds = REFUSALS[case]
    for name, value in bounds.items():
        monkeypatch.setattr(import_files, name, value)
    path = make(tmp_path, resnet20)
    with pytest.raises(ValueError, match=None) as refused:
        importer.import_model(path, tmp_path / "runs" / "run", data="synthetic")
    assert needle in str(refused.value) and "\n" not in str(refused.value)
    result = run_main("import", path, "--data", "synthetic", "--out", tmp_path / "runs" / "run", "--json")
    assert result.returncode == 2
    assert_clean_failure(result, needle)
    assert len(result.stderr.strip().splitlines()) == 1 and not result.stdout
    assert not (tmp_path / "runs").exists()


def test_a_custom_layer_is_refused_by_name(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="Mine")
    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(Doubling(name="my_doubling")(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "custom.keras")
    with pytest.raises(ValueError, match="layer 'my_doubling' uses 'Doubling' .Mine>Doubling., which is not"):
        importer.import_model(tmp_path / "custom.keras", tmp_path / "run")


def test_a_mismatch_names_the_first_layer_that_differs(tmp_path):
    import keras

    layers = [keras.layers.Conv2D(32, 3, padding="same", activation="relu") for _ in range(7)]
    net = keras.Sequential([keras.Input((32, 32, 3)), *layers, keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(10, activation="softmax")])
    net.save(tmp_path / "seven.keras")
    with pytest.raises(ValueError, match=r"is a 3x3 convolution of 32 filters, stride 1 where Plain-8 v1 has "
                                         r"stem_conv \(a 3x3 convolution of 16 filters"):
        importer.import_model(tmp_path / "seven.keras", tmp_path / "run")


def test_an_out_folder_with_files_is_refused_before_the_file_is_read(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.keras").write_text("a training run")
    with pytest.raises(ValueError, match="already holds files"):
        importer.import_model(tmp_path / "missing.keras", tmp_path / "run")


@pytest.mark.parametrize("content, needle", [
    (np.full((32, 32, 3), 120.0), "x/255"), (np.zeros((28, 28)), "of shape (28, 28)")])
def test_a_mean_file_is_checked(content, needle, tmp_path):
    np.save(tmp_path / "mean.npy", content)
    with pytest.raises(ValueError, match=None) as refused:
        importer.read_mean(tmp_path / "mean.npy")
    assert needle in str(refused.value)


def test_the_page_imports_an_upload_for_its_session_only(resnet20, start_app, tmp_path):
    """The API of the Classify tab's upload (`/import_model`): the tutorial's file imported on
    the engine, named "import:<id>", used by /classify, /inside, /lesion, /signals and /paths in
    this session and refused in another;
    a bad file (truncated, with a Lambda layer, a VGG) says why and leaves nothing in the app's
    folder of imports."""
    from gradio_client import Client, handle_file
    from PIL import Image

    runs = tmp_path / "runs"
    image = tmp_path / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(image)
    with start_app(EXPLORER_RUNS=str(runs)) as url:
        client = Client(url, verbose=False)
        listed, said = client.predict(file=handle_file(str(resnet20[1]["keras"])), preprocess="tutorial",
                                      api_name="/import_model")
        chosen = listed["value"]  # the checkpoint list, updated: the import chosen in it
        assert chosen.startswith("import:") and chosen in [value for _, value in listed["choices"]]
        assert "ResNet-20 v1" in said and "274,442 parameters" in said and "256 test images" in said
        label = client.predict(image=handle_file(str(image)), checkpoint=chosen, api_name="/classify")
        assert len(label["confidences"]) == 5
        # every tab takes it: Look inside (its shipped plain twin beside it), the lesion study,
        # signal propagation and path lengths at its weights
        drawn = client.predict(checkpoint=chosen, image=handle_file(str(image)), block="stage2_block1",
                               api_name="/inside")
        assert "On this image, ResNet-20 v1" in drawn[3] and "Plain-20 v1" in drawn[3], drawn[3]
        _, lesioned = client.predict(checkpoint=chosen, samples=32, compare=None, api_name="/lesion")
        assert "ResNet-20 v1" in lesioned, lesioned
        for endpoint in ("/signals", "/paths"):
            _, read = client.predict(net="checkpoint", checkpoint=chosen, depth=20, version=1, seed=0,
                                     samples=16, api_name=endpoint)
            assert "ResNet-20 v1" in read, (endpoint, read)
        with pytest.raises(Exception, match="belongs to another session"):
            Client(url, verbose=False).predict(image=handle_file(str(image)), checkpoint=chosen,
                                               api_name="/classify")
        # each refusal in its own words, through the page as through the command (a Lambda's
        # code is never run: the file is refused on its config)
        for path, needle in ((truncated_file(tmp_path, resnet20), "truncated or corrupt"),
                             (lambda_file(tmp_path), "layer 'scale_pixels' is a Lambda layer"),
                             (vgg_file(tmp_path), "not a CIFAR ResNet")):
            with pytest.raises(Exception, match=needle):
                client.predict(file=handle_file(str(path)), preprocess="as the file says",
                               api_name="/import_model")
        assert [path.name for path in (runs / "imports").iterdir()] == [chosen[len("import:"):]]
