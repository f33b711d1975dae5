"""Throughput against the machine's own rates: timed windows, TensorFlow's convolution and
matmul rates on this machine now (TensorFlow is installed with every backend), and the
FLOPs of a compiled train step, counted on TensorFlow's graph."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import keras
import tensorflow as tf

# TensorFlow's FLOP-count registry (what tf.compat.v1.profiler's float_operation reads)
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.profiler.internal import flops_registry  # noqa: F401

DENSE_OPS = {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul"}


def median_seconds(call: Callable[[], object], windows: int, repeats: int) -> float:
    """Median over `windows` timed windows of `repeats` calls, after one warm-up window."""
    call()
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(repeats):
            result = call()
        wait(result)
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def wait(result) -> None:
    """Block until an asynchronous result (TensorFlow, JAX) is computed."""
    for value in keras.tree.flatten(result):
        if value is not None:
            keras.ops.convert_to_numpy(value)
            return


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def fit_seconds(model: keras.Model, dataset, steps: int, windows: int) -> float:
    """Seconds per train step of `model.fit` on `dataset`: the median of `windows` epochs of
    `steps` steps, after one epoch that compiles the step. The same compiled step on every
    backend (a `tf.function`, a jitted JAX function, PyTorch's eager step)."""
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=windows + 1, verbose=0, callbacks=[timer])
    return statistics.median(timer.seconds[1:]) / steps


def machine_rates(windows: int) -> dict[str, float]:
    """GFLOP/s of TensorFlow on this machine now: a 3x3 64->64 convolution at 32x32 (batch 32,
    forward: the PixelDA generator's shape) and a 2048 x 2048 matmul."""
    normal = tf.random.Generator.from_seed(0).normal
    x, kernel, a = normal((32, 32, 32, 64)), normal((3, 3, 64, 64)), normal((2048, 2048))
    conv = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME"))
    matmul = tf.function(lambda: tf.matmul(a, a))
    conv_flops, matmul_flops = 2 * 32 * 32 * 32 * 9 * 64 * 64, 2 * 2048**3
    return {
        "conv_gflop_s": conv_flops / median_seconds(conv, windows, 20) / 1e9,
        "matmul_gflop_s": matmul_flops / median_seconds(matmul, windows, 5) / 1e9,
    }


def step_flops(model: keras.Model, batch) -> int:
    """Convolution and matmul FLOPs of one compiled train step on `batch`, counted on the
    traced graph: the nodes the function runtime runs (ancestors of the outputs and of the
    stateful ops; gradients nobody uses are pruned), each by TensorFlow's FLOP statistic."""
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    stack, seen = [t.op for t in graph.outputs] + list(graph.control_outputs), set()
    while stack:
        op = stack.pop()
        if op not in seen:
            seen.add(op)
            stack.extend([t.op for t in op.inputs] + list(op.control_inputs))
    return sum(
        int(tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value)
        for op in seen
        if op.type in DENSE_OPS
    )
