"""How long the app's start-up warm-ups hold a worker (not a timed test): the longest task a
visitor's request can wait behind, and what such a request waits.

A fresh app is started with its task log on (`EXPLORER_LOG_TASKS=1`); `--visits` times, every
`--every` seconds from its first answer, a visitor asks for a gradient flow at a new seed
(ResNet-20 v1, batch 32: a small request, so its time is mostly the wait). After `--settle`
seconds with no visitor, the same request once more gives the settled time. The log then
says which tasks ran and for how long: during start-up, every task but the visitors' is a
warm-up, and the longest of them is the longest a request can wait for a worker.

With `--baseline TREE` (a checkout of an earlier commit: `git worktree add /tmp/one-task HEAD~1`)
that app is measured too, the two alternated in pairs, each started fresh.

    python bench/warm_hold.py [--visits 6 --every 5] [--settle 90] [--baseline TREE --pairs 1]
"""

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, app_server, call

LINE = re.compile(r"\[engine\] (\d\d):(\d\d):(\d\d) (\S+)( \(warm-up\))? ended after ([\d.]+) s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=6, help="visitor requests during start-up")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between them")
    parser.add_argument("--settle", type=float, default=90.0, help="seconds before the settled request")
    parser.add_argument("--baseline", type=Path, help="an earlier checkout measured the same way")
    parser.add_argument("--pairs", type=int, default=1, help="alternating pairs with --baseline")
    args = parser.parse_args()
    apps = {"this": ROOT / "app.py", **({"baseline": args.baseline / "app.py"} if args.baseline else {})}
    runs = {which: [] for which in apps}
    for pair in range(args.pairs):
        order = list(apps) if pair % 2 == 0 else list(reversed(apps))
        for which in order:
            runs[which].append(measure(apps[which], args))
            print(json.dumps({"pair": pair + 1, "app": which, **runs[which][-1]}), flush=True)
    print(json.dumps({which: {"longest_warm_task_s": max(r["longest_warm_task_s"] for r in found),
                              "visitor_median_s": statistics.median(v for r in found
                                                                    for v in r["visitors_s"]),
                              "visitor_worst_s": max(v for r in found for v in r["visitors_s"]),
                              "settled_s": statistics.median(r["settled_s"] for r in found)}
                      for which, found in runs.items()}))


def _flow(url, seed) -> float:
    start = time.perf_counter()
    call(url, "gradient_flow", [20, 1, 32, seed, "kernels"])
    return round(time.perf_counter() - start, 2)


def measure(app: Path, args) -> dict:
    """Visitors during a fresh `app`'s start-up, one when it has settled, and its task log."""
    log = Path(tempfile.mkdtemp()) / "app.log"
    env = {"EXPLORER_RUNS": tempfile.mkdtemp(), "EXPLORER_LOG_TASKS": "1"}
    with app_server(log_path=log, app=app, cwd=app.parent, **env) as url:
        answered = time.monotonic()
        clock = time.localtime(time.time() + args.every)
        first_visit = clock.tm_hour * 3600 + clock.tm_min * 60 + clock.tm_sec  # as the log writes times
        visitors, seed = [], 1000
        for visit in range(args.visits):
            time.sleep(max(0.0, answered + (visit + 1) * args.every - time.monotonic()))
            seed += 1
            visitors.append(_flow(url, seed))
        time.sleep(max(0.0, answered + args.settle - time.monotonic()))
        startup_lines = log.read_text().count("\n")
        seed += 1
        settled = _flow(url, seed)
    startup = "\n".join(log.read_text().splitlines()[:startup_lines])
    # the tasks the engine marks as warm-ups (`engine.call`); in an earlier app that marks none,
    # every task of the start-up but the visitors' probe_twin halves (one that began before
    # the first visitor came is the default view's warm-up)
    marked = "(warm-up)" in startup
    warm = []
    for hours, minutes, secs, name, mark, seconds in LINE.findall(startup):
        began = int(hours) * 3600 + int(minutes) * 60 + int(secs) - float(seconds)
        if mark if marked else (name != "probe_twin" or began < first_visit - 1):
            warm.append((name, float(seconds)))
    return {"visitors_s": visitors, "settled_s": settled,
            "longest_warm_task_s": max((seconds for _, seconds in warm), default=0.0),
            "warm_tasks": [f"{name} {seconds:.1f}" for name, seconds in warm]}


if __name__ == "__main__":
    main()
