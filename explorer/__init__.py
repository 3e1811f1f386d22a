"""ResNet Explorer: see why residual networks train when plain deep networks don't."""

import os

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 and the like; on
# an AVX2-only CPU (this project's 2-core machines, lately) they trained ResNet-20 at about 3x the
# speed of its default kernels (median 2.82x, `python bench/onednn.py`, 3 rounds). Set
# before TensorFlow's first import; a value set outside wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
