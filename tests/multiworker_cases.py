"""The runs tests/test_multiworker.py compares. `python -m tests.multiworker_cases OUT CASE...`
runs one worker of a `MultiWorkerMirroredStrategy` (its cluster and task in TF_CONFIG),
made by the apps' `device_strategy("multiworker")`; without TF_CONFIG, the cases on one
device. For each case it writes its `train_recording` results (its own copy of the
gradients) to OUT-CASE.npz."""

from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf

from tests.distribute_cases import RECORDED, train_recording
from training.devices import device_strategy

if __name__ == "__main__":
    out, *cases = sys.argv[1:]
    several = "TF_CONFIG" in os.environ
    strategy = device_strategy("multiworker") if several else tf.distribute.get_strategy()
    for case in cases:
        _, results = train_recording(case, strategy, RECORDED)
        results.pop("start")  # the same seeds build the same weights; workers take the chief's
        np.savez(f"{out}-{case}", **results)
