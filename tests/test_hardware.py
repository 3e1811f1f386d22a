"""The Train tab's hardware line: what a job costs, and the notice when TensorFlow misses a GPU
that nvidia-smi sees (both cases faked: no test needs a GPU)."""

import pytest

from explorer.train import hardware


def test_cpu_cost_is_derived_from_the_measured_figure_and_scaled_by_multiply_adds():
    # ResNet-20 itself: 50,000 images at the measured throughput
    assert hardware.epoch_minutes(20) == pytest.approx(50_000 / hardware.CPU_IMAGES_PER_SECOND / 60)
    assert hardware.epoch_minutes(56) == pytest.approx(3.1 * hardware.epoch_minutes(20), rel=0.05)
    note = hardware.cost_note("CPU (2 cores)")
    assert note.startswith("**Hardware: CPU (2 cores).**")
    # 187 img/s
    assert "ResNet-20 4.5, ResNet-56 13.7, ResNet-110 27.6" in note and "bench/train_throughput.py" in note


def test_gpu_cost_names_the_device_and_no_unmeasured_number():
    note = hardware.cost_note("GPU: NVIDIA H200")
    assert "NVIDIA H200" in note and "python -m explorer bench train" in note and "minutes" not in note


def test_no_notice_without_nvidia_smi_or_when_tensorflow_sees_the_gpu():
    def never():
        raise AssertionError("TensorFlow need not be asked")

    assert hardware.gpu_notice(None, 0, reason=never) == ""
    assert hardware.gpu_notice("/usr/bin/nvidia-smi", 1, reason=never) == ""


def test_notice_quotes_tensorflows_reason_when_it_misses_the_gpu():
    said = "Could not find cuda drivers on your machine, GPU will not be used."
    notice = hardware.gpu_notice("/usr/bin/nvidia-smi", 0, reason=lambda: said)
    assert "does not see it" in notice and f"> {said}" in notice and "requirements-gpu.txt" in notice
    built = hardware.gpu_notice("/usr/bin/nvidia-smi", 0, reason=lambda: said, built_with_cuda=False)
    assert "built without CUDA" in built


def test_the_reason_comes_from_tensorflows_own_log(monkeypatch):
    class Done:
        stdout = "GPUS 0\n"
        stderr = ("I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
                  "GPU will not be used.\n"
                  "I0000 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use AVX512F\n")

    monkeypatch.setattr(hardware.subprocess, "run", lambda *a, **k: Done)
    assert hardware.tensorflow_gpu_log() == Done.stderr.splitlines()[0].strip()


def test_the_train_tab_note_on_this_host():
    note = hardware.train_tab_note()
    assert note.startswith("**Hardware: ")
