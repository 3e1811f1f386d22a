#!/bin/bash
# How plain-56 v1 and ResNet-29 v2 were trained (session 6): on a lent NVIDIA H200 with
# Keras' JAX backend (that machine has JAX, not TensorFlow; `make_datasets` then streams from
# NumPy, see explorer/pipeline.py), recipe B with bf16 as on the CPU, side by side, each run
# stopping at the first epoch end after MAX seconds and returned as a tar in $OUT. Run again,
# it resumes both from runs/ (BackupAndRestore).
#
# Here, before the call (the data and Keras travel with the tree; .gpu and .whl are in
# .git/info/exclude):
#   mkdir -p .gpu .whl && cp ../shared/data/cifar10-jpeg.tar.gz .gpu/ && cp pretrained/train_gpu.sh .gpu/run.sh
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       keras==3.15.1 namex==0.1.0 optree==0.20.0
# The call: device run, carry [".gpu", ".whl"], command `MAX=470 bash .gpu/run.sh`.
MAX=${MAX:-450}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD XLA_PYTHON_CLIENT_MEM_FRACTION=0.3
mkdir -p ../shared/data && cp .gpu/cifar10-jpeg.tar.gz ../shared/data/
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export KERAS_BACKEND=jax
python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices()); print(keras.ops.sum(keras.ops.ones((2, 2))))" || export KERAS_BACKEND=torch
echo "backend $KERAS_BACKEND"
data=../shared/data/cifar10-jpeg.tar.gz
time python3 -c "from explorer.data import load_cifar10; d = load_cifar10('$data'); print(d.x_train.shape, d.x_test.shape)"
recipe="--epochs 100 --weight-decay 3e-4 --cutout 16 --precision mixed_bfloat16 --data $data --max-seconds $MAX"
mkdir -p runs
for run in "plain56_v1 --depth 56 --version 1 --plain" "resnet29_v2 --depth 29 --version 2"; do
  set -- $run; name=$1; shift
  python3 -m explorer train "$@" $recipe --out runs/$name > runs/$name.log 2>&1 &
  pids="$pids $!"
done
(while sleep 30; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; for n in plain56_v1 resnet29_v2; do tail -c 300 runs/$n.log | tr '\r' '\n' | grep -a "Epoch\|val_acc" | tail -1; done; done) &
monitor=$!
wait $pids
kill $monitor 2>/dev/null
for n in plain56_v1 resnet29_v2; do
  tail -5 runs/$n.log
  tar -cf $OUT/$n.tar --exclude='*.bkp' --exclude=.lock -C runs $n
  cp runs/$n.log $OUT/
done
ls -la $OUT
