"""Runnable steps of the two pipelines (`python -m apps.<name> --help`)."""

import os

# Quiet TensorFlow's C++ start-up logging (CUDA probing on CPU machines); errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI or newer;
# on AVX2-only CPUs it falls back to Eigen's convolutions, half as fast on PixelDA's step
# (docs/devices-and-speed.md). The same arithmetic; TF_ENABLE_ONEDNN_OPTS=0 turns it off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
