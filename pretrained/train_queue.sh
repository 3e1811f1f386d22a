#!/usr/bin/env bash
# Trains the checkpoints still missing from pretrained/, one run at a time on all cores, and
# ships each one as it finishes. Each run resumes from its BackupAndRestore state in runs/
# (copied from pretrained/resume/ when runs/ has none), so the queue can be killed at any time
# and started again with the same command.
#
#   git worktree add --detach ../trainer HEAD   # once: the runs' code stays fixed while main changes
#   cp pretrained/train_queue.sh runs/ && cd ../trainer
#   nohup ../main/runs/train_queue.sh ../main >> ../main/runs/queue.log 2>&1 &
#
# Why one at a time: on this 2-core machine ResNet-56 took 172-200 s an epoch alone on two threads,
# against 463-953 s (median 568) each beside another run on one thread each (runs/*.log), so in turn
# the two finish sooner than side by side. Why a copy of this script: bash reads a script as it
# runs, so editing the tree's copy would change the running one.
set -uo pipefail
main=$(realpath "${1:?usage: train_queue.sh MAIN_TREE (run it from a worktree of it)}")
runs=$main/runs
data=../shared/data/cifar10-jpeg.tar.gz  # relative, as in the shipped runs' config.json
recipe="--epochs 100 --weight-decay 3e-4 --cutout 16 --data $data"  # recipe B
python=$main/.venv/bin/python
export OMP_NUM_THREADS=2 TF_NUM_INTEROP_THREADS=2 TF_NUM_INTRAOP_THREADS=2
mkdir -p "$runs"

queue=(
    "resnet56_v1 --depth 56 --version 1"
    "plain56_v1 --depth 56 --version 1 --plain"
    "resnet29_v2 --depth 29 --version 2"
)
for entry in "${queue[@]}"; do
    read -r name arch <<< "$entry"
    if [ -f "$main/pretrained/$name.keras" ]; then
        echo "$(date -u +%FT%TZ) $name: shipped already"
        continue
    fi
    if [ ! -d "$runs/$name" ] && [ -d "$main/pretrained/resume/$name" ]; then
        cp -r "$main/pretrained/resume/$name" "$runs/"
    fi
    if ! grep -qs '"state": "done"' "$runs/$name/status.json"; then
        echo "$(date -u +%FT%TZ) $name: training"
        # shellcheck disable=SC2086  # arch and recipe are word lists
        if ! nice -n 19 "$python" -m explorer train $arch $recipe --out "$runs/$name" \
                >> "$runs/$name.log" 2>&1; then
            echo "$(date -u +%FT%TZ) $name: train failed (see runs/$name.log); stopping"
            exit 1
        fi
    fi
    echo "$(date -u +%FT%TZ) $name: shipping"
    (cd "$main" && "$python" -m explorer ship "runs/$name" --name "$name" --data "$data") ||
        echo "$(date -u +%FT%TZ) $name: ship failed; the next run starts anyway"
    # the insight lab's report on the paper's pair, once both are shipped (before the next run
    # takes the cores): runs/report_56.txt, for README.md's "What our checkpoints show"
    if [ "$name" = plain56_v1 ] && [ -f "$main/pretrained/resnet56_v1.keras" ] &&
            [ -f "$main/pretrained/plain56_v1.keras" ]; then
        echo "$(date -u +%FT%TZ) report: plain-56 against ResNet-56"
        (cd "$main" && for view in "lesion --samples 2000" landscape; do
            # shellcheck disable=SC2086  # view is a word list
            "$python" -m explorer $view pretrained/resnet56_v1.keras \
                --compare pretrained/plain56_v1.keras --data "$data"
        done) > "$runs/report_56.txt" 2>&1
    fi
done
echo "$(date -u +%FT%TZ) queue done"
