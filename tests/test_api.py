"""The named API endpoints through gradio_client, as a user would script them."""

import subprocess
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def test_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    for name in ("/build_architecture", "/download_architecture", "/train_start", "/train_status",
                 "/train_stop", "/gradient_flow", "/depth_sweep", "/classify", "/classify_sketch",
                 "/gradcam", "/gradcam_sketch", "/lesion", "/loss_landscape", "/classify_imagenet",
                 "/degradation"):
        assert name in names


def test_build_architecture_with_depth_and_version_only(client):
    _, _, _table, headline, notes = client.predict(depth=110, version=1, api_name="/build_architecture")
    assert "1,742,762 parameters" in headline and "H(x) = F(x) + x" in notes


@pytest.mark.parametrize("depth, version, message", [
    (21, 1, "nearest valid depths are 20 and 26"),
    (-5, 1, "depth must be positive"),
    (10**9, 1, "too large"),
    (20, 3, r"version must be 1 or 2|not in the list of choices: \[1, 2\]"),  # Gradio's Radio check
])
def test_bad_architecture_requests_get_the_clear_message_fast(client, depth, version, message):
    start = time.perf_counter()
    with pytest.raises(Exception, match=message):
        client.predict(depth=depth, version=version, api_name="/build_architecture")
    assert time.perf_counter() - start < 1  # refused before any work (client overhead included)


@pytest.mark.parametrize("kwargs, message", [
    ({"depth": 10**9, "version": 1}, "depth must be a whole number from 1 to 2000"),
    ({"depth": 20, "version": 3}, "version must be a whole number from 1 to 2"),  # gr.api: ours
    ({"depth": 20, "version": 1, "epochs": 10**6}, "epochs must be a whole number"),
    ({"depth": 20, "version": 1, "subset": -1}, "subset must be a whole number"),
])
def test_bad_training_requests_are_refused(client, kwargs, message):
    with pytest.raises(Exception, match=message):
        client.predict(**kwargs, api_name="/train_start")


def test_train_status_and_stop_of_unknown_or_foreign_jobs(client, app_url):
    with pytest.raises(Exception, match="unknown job id"):
        client.predict(job_id="does-not-exist", api_name="/train_status")
    job_id = client.predict(depth=8, version=1, epochs=1, subset=256, api_name="/train_start")
    assert isinstance(job_id, str) and len(job_id) == 12
    status = client.predict(job_id=job_id, api_name="/train_status")
    assert status["state"] in ("queued", "running", "done")
    other = Client(app_url, verbose=False)  # another session
    with pytest.raises(Exception, match="another session"):
        other.predict(job_id=job_id, api_name="/train_stop")
    stopped = client.predict(job_id=job_id, api_name="/train_stop")
    assert stopped["state"] in ("stopped", "done")


def test_gradient_flow_endpoint(client):
    _figure, reading, _numbers = client.predict(depth=20, version=1, api_name="/gradient_flow")
    assert "ResNet-20 v1" in reading


def _app_rss_mb(app_url):
    port = app_url.rsplit(":", 1)[1]
    for pid in subprocess.run(["pgrep", "-f", "app.py"], capture_output=True, text=True,
                              check=False).stdout.split():
        try:
            if f"EXPLORER_PORT={port}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                status = Path(f"/proc/{pid}/status").read_text()
                return int(status.split("VmRSS:")[1].split()[0]) / 1024
        except OSError:
            continue
    pytest.skip("cannot read the app's memory")


def test_bad_uploads_get_clear_errors_and_the_app_keeps_serving(client, app_url, tmp_path):
    from test_images import BAD, _odd_images

    odd = _odd_images()
    good = tmp_path / "good.png"
    good.write_bytes(odd["webp"])
    client.predict(image=handle_file(str(good)), api_name="/classify")  # warm: model loaded
    before = _app_rss_mb(app_url)
    for round_ in range(3):
        for name, raw in BAD.items():
            path = tmp_path / f"bad{round_}.png"
            path.write_bytes(raw)
            with pytest.raises(Exception) as err:
                client.predict(image=handle_file(str(path)), api_name="/classify")
            assert "Traceback" not in str(err.value) and len(str(err.value)) < 300, name
        for name, raw in odd.items():
            path = tmp_path / f"odd{round_}.jpg"
            path.write_bytes(raw)
            label = client.predict(image=handle_file(str(path)), api_name="/classify")
            assert len(label["confidences"]) == 5, name
    after = _app_rss_mb(app_url)
    assert after - before < 300, (before, after)  # 48 decodes, a 4000x3000 photo among them
    label = client.predict(image=handle_file(str(good)), api_name="/classify")
    assert label["label"]


def test_classify_takes_a_job_of_this_session_by_name(client, tmp_path):
    """job:<id> names are not in the page's dropdown when the app starts: the API takes them."""
    from test_images import _odd_images

    job_id = client.predict(depth=8, version=1, epochs=1, subset=256, api_name="/train_start")
    deadline = time.time() + 600
    while client.predict(job_id=job_id, api_name="/train_status")["state"] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(2)
    image = tmp_path / "image.webp"
    image.write_bytes(_odd_images()["webp"])
    label = client.predict(image=handle_file(str(image)), checkpoint=f"job:{job_id}", api_name="/classify")
    assert len(label["confidences"]) == 5
    with pytest.raises(Exception, match="unknown checkpoint 'resnet9000_v1'"):
        client.predict(image=handle_file(str(image)), checkpoint="resnet9000_v1", api_name="/classify")
    with pytest.raises(Exception, match="unknown job id"):
        client.predict(image=handle_file(str(image)), checkpoint="job:nope", api_name="/classify")
