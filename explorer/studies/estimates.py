"""How long a study will take on this host, said before it starts.

An estimate is the study's work in multiply-adds (a net's per image, `costs.summarize`,
times the images and passes the study runs) divided by this host's pace for that study:
multiply-adds per second of the last live study of its kind this process finished
(`record`), or, before the first, the pace of the benchmark that measured that study on 2 CPU
cores (`MEASURED`). A shipped checkpoint's stored study is served at once (see `stored`), and
says so.
"""

from __future__ import annotations

import functools
import threading

from explorer.core.costs import summarize
from explorer.core.plans import plan
from explorer.core.specs import make_spec

# (seconds, images) a benchmark measured for ResNet-56 v1 on 2 CPU cores (README, "Measured"):
# the lesion study's passes, `python bench/lesion.py` (session 8), and the 9x9 loss landscape,
# `python bench/landscape.py` (2026-11-27).
MEASURED = {"lesion": (26.6, 256), "landscape": (48.2, 128)}
_lock = threading.Lock()
_paces: dict[str, float] = {}  # study -> multiply-adds per second, from the last live one


def net_cost(spec) -> int:
    """Multiply-adds of one image's forward pass through `spec`'s net."""
    return summarize(spec)["totals"]["flops"]


@functools.cache  # fixed figures: computed once per study
def default_pace(study: str) -> float:
    """Multiply-adds per second of `study` before any was timed here: its benchmark's pace."""
    seconds_taken, images = MEASURED[study]
    spec = make_spec(56, 1)
    work = lesion_work(spec, images) if study == "lesion" else landscape_work(spec, 9, images)
    return work / seconds_taken


def lesion_work(spec, samples: int) -> float:
    """The intact pass plus, per deleted block, the net from that block on (`lesion_pass`
    starts each deletion at its block's input): about half the net per block."""
    return (1 + len(plan(spec).blocks) / 2) * samples * net_cost(spec)


def landscape_work(spec, steps: int, samples: int) -> float:
    """A steps x steps plane and a slice of 2 steps - 1 points, each a pass over the images."""
    return (steps * steps + 2 * steps - 1) * samples * net_cost(spec)


def record(study: str, work: float, seconds: float) -> None:
    """Keeps the pace of a live study that just ended (its work over its wall time)."""
    if seconds > 0 and work > 0:
        with _lock:
            _paces[study] = work / seconds


def seconds(study: str, work: float) -> tuple[float, bool]:
    """(expected seconds for `work`, whether the pace was measured here)."""
    with _lock:
        pace = _paces.get(study)
    return work / (pace or default_pace(study)), pace is not None


def say(study: str, works: list[float | None]) -> str:
    """The line a page shows before the study starts: per checkpoint its work, or None where
    a stored result will be served."""
    live = [work for work in works if work is not None]
    if not live:
        return "Expected: at once (a stored study of this checkpoint, measured once beforehand)."
    estimate, measured = seconds(study, sum(live))
    minutes, rest = divmod(round(estimate), 60)
    took = f"{minutes} min {rest:02d} s" if minutes else f"{max(1, rest)} s"
    basis = (f"paced by the last {study} study measured on this host" if measured else
             "paced by its benchmark on 2 CPU cores; your first study here sets this host's pace")
    stored = " (the stored checkpoint at once)" if len(live) < len(works) else ""
    return f"Expected: about {took}{stored}, {basis}."


def _works(paths, work, study: str, settings: dict, source) -> list[float | None]:
    # deferred: importing this module must not load TensorFlow
    from explorer.nets.models import checkpoint_spec
    from explorer.shipped import stored  # deferred: importing this module must not load PIL

    return [None if stored.lookup(study, path, settings, source) else work(checkpoint_spec(path))
            for path in paths]


def lesion_line(paths, samples: int, source) -> str:
    """The expected time of a lesion study of `paths` on `samples` images (checked values)."""
    return say("lesion", _works(paths, lambda spec: lesion_work(spec, samples), "lesion",
                                {"samples": samples}, source))


def landscape_line(paths, steps: int, samples: int, source) -> str:
    """The expected time of a loss landscape of `paths` (checked values; default span and
    seed, the ones stored studies use)."""
    return say("landscape", _works(paths, lambda spec: landscape_work(spec, steps, samples), "landscape",
                                   {"steps": steps, "samples": samples, "span": 1.0, "seed": 0}, source))

