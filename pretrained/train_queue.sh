#!/usr/bin/env bash
# Trains the checkpoints still missing from pretrained/, one run at a time on all cores, and
# ships each one as it finishes. Each run resumes from its BackupAndRestore state in runs/
# (copied from pretrained/resume/ when runs/ has none), so the queue can be stopped at any time
# (kill its pid: the trainer stops with it) and started again with the same command.
#
#   M=$PWD                                     # the main tree
#   git worktree add --detach ../trainer HEAD  # the runs' code: fixed while the tree changes;
#                                              # at a session start, no run going:
#                                              # git -C ../trainer checkout --detach main
#   mkdir -p runs && cp pretrained/train_queue.sh runs/ && cd ../trainer
#   nohup "$M/runs/train_queue.sh" "$M" >> "$M/runs/queue.log" 2>&1 &
#
# Why one at a time: on this 2-core machine ResNet-56 trained faster alone on two threads than
# beside another run on one thread each (pretrained/README.md has the epoch times). Why a copy
# of this script: bash reads a script as it runs, so editing the tree's copy would change the
# running one.
set -uo pipefail
main=$(realpath "${1:?usage: train_queue.sh MAIN_TREE (run it from a worktree of it)}")
runs=$main/runs
data=../shared/data/cifar10-jpeg.tar.gz  # relative, as in the shipped runs' config.json
recipe="--epochs 100 --weight-decay 3e-4 --cutout 16 --data $data"  # recipe B
python=$main/.venv/bin/python
worktree=$PWD  # trains from here; ships and reports from the main tree
export OMP_NUM_THREADS=2 TF_NUM_INTEROP_THREADS=2 TF_NUM_INTRAOP_THREADS=2
mkdir -p "$runs"
say() { echo "$(date -u +%FT%TZ) $*"; }

# one queue at a time (train() also refuses a second trainer in a run folder)
exec 9> "$runs/queue.lock"
if ! flock -n 9; then
    say "another queue is running (runs/queue.lock); not starting"
    exit 1
fi
child=""
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; say "queue stopped"; exit 143' TERM INT

run() {  # a command in the background, so a TERM to the queue reaches it too
    "$@" & child=$!
    wait "$child"; local status=$?
    child=""
    return $status
}

report_56() {
    # the insight lab's report on the paper's pair, once both are shipped and before the next
    # run takes the cores: runs/report_56.txt, for README.md's "What our checkpoints show"
    [ -f "$main/pretrained/resnet56_v1.keras" ] && [ -f "$main/pretrained/plain56_v1.keras" ] &&
        [ ! -s "$runs/report_56.txt" ] || return 0
    say "report: plain-56 against ResNet-56"
    rm -f "$runs/report_56.tmp"
    cd "$main" || return 0
    local view
    for view in "lesion --samples 2000" landscape; do
        # shellcheck disable=SC2086  # view is a word list
        if ! run "$python" -m explorer $view pretrained/resnet56_v1.keras \
                --compare pretrained/plain56_v1.keras --data "$data" >> "$runs/report_56.tmp" 2>&1; then
            say "report failed (runs/report_56.tmp)"
            return 0
        fi
    done
    mv "$runs/report_56.tmp" "$runs/report_56.txt"
}

queue=(
    "resnet56_v1 --depth 56 --version 1"
    "plain56_v1 --depth 56 --version 1 --plain"
    "resnet29_v2 --depth 29 --version 2"
)
for entry in "${queue[@]}"; do
    report_56
    read -r name arch <<< "$entry"
    if [ -f "$main/pretrained/$name.keras" ]; then
        say "$name: shipped already"
        continue
    fi
    if [ ! -d "$runs/$name" ] && [ -d "$main/pretrained/resume/$name" ]; then
        cp -r "$main/pretrained/resume/$name" "$runs/"
    fi
    if ! grep -qs '"state": "done"' "$runs/$name/status.json"; then
        say "$name: training"
        cd "$worktree" || exit 1
        options="$arch $recipe"
        # a run started elsewhere (on a GPU machine, say) resumes with the options it recorded
        [ -f "$runs/$name/config.json" ] && options="--config $runs/$name/config.json"
        # shellcheck disable=SC2086  # options is a word list
        if ! run nice -n 19 "$python" -m explorer train $options --out "$runs/$name" \
                >> "$runs/$name.log" 2>&1; then
            say "$name: train failed (see runs/$name.log); stopping"
            exit 1
        fi
    fi
    say "$name: shipping"
    cd "$main" || exit 1
    run "$python" -m explorer ship "runs/$name" --name "$name" --data "$data" ||
        say "$name: ship failed; the next run starts anyway"
done
report_56
say "queue done"
