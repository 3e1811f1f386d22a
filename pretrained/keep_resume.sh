#!/usr/bin/env bash
# Copies the resume state of unfinished training runs into pretrained/resume/<name>/, so a
# later session, possibly on another machine, continues each run exactly where it stopped
# (pretrained/train_queue.sh copies it back to runs/; see README.md here).
#
#   pretrained/keep_resume.sh runs/plain56_v1 runs/resnet56_v1
#
# A running trainer is paused (SIGSTOP) while its files are copied, and resumed (SIGCONT)
# whatever happens. The copy goes to a temporary folder and replaces the kept state only
# once it checks out: the BackupAndRestore epoch must equal the number of epochs in
# history.json, and must not be behind the state already kept (a stale runs/ on another
# machine never overwrites a later epoch).
set -euo pipefail
cd "$(dirname "$0")/.."
paused=""
tmp=""
trap '[ -n "$paused" ] && kill -CONT $paused 2>/dev/null; [ -n "$tmp" ] && rm -rf "$tmp"; true' EXIT

epoch_of() {  # the backup epoch of a run folder or kept state; 0 without one
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["epoch"])' \
        "$1/backup/training_metadata.json" 2>/dev/null || echo 0
}

for run in "$@"; do
    run=${run%/}
    name=$(basename "$run")
    dest="pretrained/resume/$name"
    if [ ! -f "$run/backup/training_metadata.json" ]; then
        echo "$name: no backup yet (no finished epoch); nothing kept" >&2
        continue
    fi
    # the trainer may have been started with the relative or the absolute folder (from a worktree)
    pids=$(pgrep -f -- "--out ($run|$(realpath "$run"))\$" || true)
    for attempt in 1 2 3; do
        tmp="pretrained/resume/.$name.tmp"
        rm -rf "$tmp" && mkdir -p "$tmp/backup"
        if [ -n "$pids" ]; then paused=$pids; kill -STOP $pids; fi
        cp "$run/config.json" "$run/history.json" "$tmp/"
        cp "$run/backup/latest.weights.h5" "$run/backup/training_metadata.json" "$tmp/backup/"
        if [ -n "$pids" ]; then kill -CONT $pids; paused=""; fi
        if python3 - "$tmp" "$name" <<'EOF'
import json, sys
from pathlib import Path
tmp, name = Path(sys.argv[1]), sys.argv[2]
epoch = json.loads((tmp / "backup" / "training_metadata.json").read_text())["epoch"]
done = len(json.loads((tmp / "history.json").read_text())["epochs"])
planned = json.loads((tmp / "config.json").read_text())["epochs"]
print(f"{name}: backup at epoch {epoch}, history {done} epochs, of {planned}")
sys.exit(0 if epoch == done else 1)
EOF
        then
            kept=$(epoch_of "$dest")
            now=$(epoch_of "$tmp")
            if [ "$kept" -gt "$now" ]; then
                rm -rf "$tmp" && tmp=""
                echo "$name: pretrained/resume holds epoch $kept, later than $run's $now; kept it" >&2
                continue 2
            fi
            rm -rf "$dest" && mv "$tmp" "$dest" && tmp=""
            continue 2
        fi
        echo "  caught mid-epoch-end, trying again" >&2
        sleep 20
    done
    rm -rf "$tmp" && tmp=""
    echo "$name: could not take a consistent copy" >&2
    exit 1
done
