"""The benchmark: the FLOP count of a train step equals the count from the layer shapes, and a
PyTorch peer that fails is left out of the comparison."""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from models.classifier import compiled_classifier
from training.throughput import step_flops


def test_step_flops_counts_forward_and_both_gradients_of_each_layer():
    """Classifier per image, 2 x multiply-adds: conv 5x5 3->32 at 32x32 (4,915,200), conv 5x5
    32->48 at 16x16 (19,660,800), dense 3072->100, 100->100, 100->10 (614,400 + 20,000 +
    2,000): forward 25,212,400; the filter gradients as much again; the input gradients of
    every layer but the first (its input is data) 20,297,200."""
    batch = (tf.zeros((4, 32, 32, 3)), tf.constant(np.arange(4), tf.int64))
    assert step_flops(compiled_classifier(), batch) == 4 * (2 * 25_212_400 + 20_297_200)


def test_a_failing_torch_peer_is_left_out_not_fatal(tmp_path, capsys):
    # a peer mode that crashes (torch.compile segfaulted under ATEN_CPU_CAPABILITY=avx2 on
    # an AVX-512 CPU) gives NaN and one line; a mode that runs gives its rate
    from apps.benchmark import torch_rate

    reference = tmp_path / "reference.py"
    reference.write_text(
        "import os, signal, sys\n"
        "if sys.argv[3] == 'compile':\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "print('torch pixelda [eager]: 771 ms/step (batch 32) -> 41.5 img/s')\n"
    )
    assert torch_rate(sys.executable, reference, "pixelda", 3, "eager") == 41.5
    assert np.isnan(torch_rate(sys.executable, reference, "pixelda", 3, "compile"))
    assert "torch peer pixelda compile failed (SIGSEGV)" in capsys.readouterr().err
