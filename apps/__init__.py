"""Runnable steps of the two pipelines (`python -m apps.<name> --help`)."""

import os

# Quiet TensorFlow's C++ start-up logging (CUDA probing on CPU machines); errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
