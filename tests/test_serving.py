"""How the app serves: loopback only by default, and a clear error when the queue is full."""

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _outward_ip():
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return None


def test_binds_loopback_only_by_default(app_url):
    ip = _outward_ip()
    if not ip or ip.startswith("127."):
        pytest.skip("this machine has no non-loopback address")
    port = int(app_url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection((ip, port), timeout=2):
        pass


def _call(url, api_name, data):
    body = json.dumps({"data": data}).encode()
    req = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", body,
                                 {"Content-Type": "application/json"})
    event = json.loads(urllib.request.urlopen(req).read())["event_id"]
    return urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event}").read().decode()


def test_overload_gets_a_clear_queue_full_error(start_app):
    with start_app(EXPLORER_QUEUE_SIZE="1") as url:
        results = []
        request = [20, 1, 64, 0, "kernels"]  # a second or more each, one at a time (probe limit 1)

        def client():
            try:
                results.append(_call(url, "gradient_flow", request))
            except urllib.error.HTTPError as err:  # the queue refuses at once, with a reason
                results.append(f"HTTP {err.code}: {err.read().decode()}")

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert len(results) == 4
        full = [r for r in results if "queue is full" in r.lower()]
        done = [r for r in results if "event: complete" in r]
        assert full and done, results
        # and it still serves afterwards
        assert "event: complete" in _call(url, "build_architecture",
                                          [20, 1, "cifar", True, "projection", "none", False])
