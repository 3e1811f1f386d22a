#!/usr/bin/env bash
# Copies the resume state of unfinished training runs into pretrained/resume/<name>/, so a
# later session, possibly on another machine, continues each run exactly where it stopped
# (`cp -r pretrained/resume/<name> runs/` and the same train command: see README.md here).
#
#   pretrained/keep_resume.sh runs/plain20_v1 runs/resnet56_v1
#
# A running trainer is paused (SIGSTOP) while its files are copied, and the copy is checked:
# the BackupAndRestore epoch must equal the number of epochs in history.json.
set -euo pipefail
cd "$(dirname "$0")/.."
for run in "$@"; do
    run=${run%/}
    name=$(basename "$run")
    # the trainer may have been started with the relative or the absolute folder (from a worktree)
    pids=$(pgrep -f -- "--out ($run|$(realpath "$run"))\$" || true)
    for attempt in 1 2 3; do
        [ -n "$pids" ] && kill -STOP $pids
        dest="pretrained/resume/$name"
        rm -rf "$dest" && mkdir -p "$dest/backup"
        cp "$run/config.json" "$run/history.json" "$dest/"
        cp "$run/backup/latest.weights.h5" "$run/backup/training_metadata.json" "$dest/backup/"
        [ -n "$pids" ] && kill -CONT $pids
        if python3 - "$dest" <<'EOF'
import json, sys
from pathlib import Path
dest = Path(sys.argv[1])
epoch = json.loads((dest / "backup" / "training_metadata.json").read_text())["epoch"]
done = len(json.loads((dest / "history.json").read_text())["epochs"])
planned = json.loads((dest / "config.json").read_text())["epochs"]
print(f"{dest.name}: backup at epoch {epoch}, history {done} epochs, of {planned}")
sys.exit(0 if epoch == done else 1)
EOF
        then
            continue 2
        fi
        echo "  caught mid-epoch-end, trying again" >&2
        sleep 20
    done
    echo "$name: could not take a consistent copy" >&2
    exit 1
done
