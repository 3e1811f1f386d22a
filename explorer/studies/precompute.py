"""Precompute: measure the app's default lesion studies, loss landscapes and read-outs of
shipped checkpoints once, and keep them in `pretrained/studies/` through `shipped.stored`.

It lives among the studies because it runs them; `shipped.stored` only looks results up.
"""

from __future__ import annotations

import time
from pathlib import Path

from explorer.core.limits import READOUT_TEST, READOUT_TRAIN
from explorer.shipped import pretrained, stored
from explorer.studies.landscape import loss_landscape
from explorer.studies.lesion import lesion
from explorer.studies.readout import readout


def precompute(names, source: str, root: Path | None = None, log=print) -> list[Path]:
    """Measures and stores the lesion studies, loss landscapes and read-outs of shipped checkpoints.

    Args:
        names: manifest names.
        source: the data source (the archive the app measures on).
        root: the shipped checkpoints' folder; None for `pretrained.PRETRAINED`.
        log: called with a line per study stored.

    Returns:
        The files written.

    Raises:
        ValueError: an unknown name, or the data cannot be had.
    """
    written = []
    for name in names:
        path = pretrained.pretrained_path(name, root)
        shown = f"pretrained/{path.name}"
        for samples in stored.LESION_SAMPLES:
            # a rerun goes on where it stopped
            if stored.lookup("lesion", path, {"samples": samples}, source, root):
                continue
            result = lesion(path, source, samples)
            command = f"python -m explorer lesion {shown} --samples {samples} --data {source} --json"
            written.append(stored.store("lesion", name, {"samples": samples}, source, result, command, root))
            log(f"{name}: lesion on {samples} images -> {written[-1].name}")
        for settings in stored.LANDSCAPE_SETTINGS:
            if stored.lookup("landscape", path, settings, source, root):
                continue
            start = time.perf_counter()
            result = loss_landscape(path, source, settings["samples"], settings["steps"], settings["span"],
                                    seed=settings["seed"])
            result["seconds"] = round(time.perf_counter() - start, 1)  # as landscape_study adds it
            command = (f"python -m explorer landscape {shown} --samples {settings['samples']} --steps "
                       f"{settings['steps']} --span {settings['span']} --seed {settings['seed']} "
                       f"--data {source} --json")
            written.append(stored.store("landscape", name, settings, source, result, command, root))
            log(f"{name}: landscape {settings['steps']}x{settings['steps']} on {settings['samples']} "
                f"-> {written[-1].name}")
        settings = {"test": READOUT_TEST, "train": READOUT_TRAIN}
        if not stored.lookup("readout", path, settings, source, root):
            result = readout(path, source, READOUT_TRAIN, READOUT_TEST)
            command = (f"python -m explorer readout {shown} --train {READOUT_TRAIN} --test {READOUT_TEST} "
                       f"--data {source} --json")
            written.append(stored.store("readout", name, settings, source, result, command, root))
            log(f"{name}: read-out on {READOUT_TRAIN} + {READOUT_TEST} images -> {written[-1].name}")
    return written
