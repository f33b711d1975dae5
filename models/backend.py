"""What differs between the Keras backends, in one place: gradient steps, the
`tf.distribute` replica context, functions for inference.

The trainers write their step once, in `keras.ops`, and take gradients through these:

- `minimize(optimizer, loss_fn, variables)`: one step of `optimizer` on the gradient of
  `loss_fn() -> (loss, aux)` w.r.t. `variables`; returns `aux`.
- `record(fn, variables)`: `fn()`'s output and a `pullback(output_gradient)` that gives the
  gradient w.r.t. `variables` later, after other updates: one forward pass serves two
  steps (PixelDA's generator output feeds the discriminator step, then its own step).
- `input_gradient(optimizer, loss_fn, x)`: `(aux, d loss / d x)` for a tensor `x`, the loss
  scaled as `optimizer` scales it (mixed precision).

TensorFlow records on a `GradientTape`, PyTorch on autograd's graph. JAX is functional:
the trainers' JAX steps (`models.base`) run inside a `keras.StatelessScope` that maps
every variable of the model, its optimizers and metrics to its value; here each function
differentiates a pure function whose inner scope maps the differentiated variables to
traced values, and copies the state it updated (batch-norm statistics, seeds) back out.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import StatelessScope

BACKEND = keras.backend.backend()


def replica_context():
    """The `tf.distribute` replica context when it has several replicas, else None (always
    None on JAX and PyTorch, which train on one device here)."""
    if BACKEND != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def replicas() -> int:
    """The replicas training in sync (1 but under a `tf.distribute` strategy)."""
    if BACKEND != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def inference(fn: Callable) -> Callable:
    """`fn` for inference: a `tf.function` on TensorFlow; on PyTorch without recording
    gradients (a long `ops.fori_loop` would otherwise keep every step's graph); as is on
    JAX, which compiles `ops.fori_loop` bodies itself."""
    if BACKEND == "torch":
        import torch

        return torch.no_grad()(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    return fn


def minimize(optimizer: keras.optimizers.Optimizer, loss_fn: Callable, variables: list):
    """One step of `optimizer` on d loss / d `variables`; `loss_fn() -> (loss, aux)`."""
    return _BACKENDS[BACKEND][0](optimizer, loss_fn, list(variables))


def record(fn: Callable, variables: list) -> tuple:
    """`(fn(), pullback)`: `pullback(g)` is the gradient of `sum(fn() * g)` w.r.t. `variables`."""
    return _BACKENDS[BACKEND][1](fn, list(variables))


def input_gradient(optimizer: keras.optimizers.Optimizer, loss_fn: Callable, x) -> tuple:
    """`(aux, gradient)`: the gradient of `optimizer.scale_loss(loss)` w.r.t. the tensor `x`,
    where `loss_fn(x) -> (loss, aux)`."""
    return _BACKENDS[BACKEND][2](optimizer, loss_fn, x)


# TensorFlow


def _tf_minimize(optimizer, loss_fn, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
        scaled = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled, variables), variables)
    return aux


def _tf_record(fn, variables):
    import tensorflow as tf

    tape = tf.GradientTape()
    with tape:
        output = fn()
    return output, lambda g: tape.gradient(output, variables, output_gradients=g)


def _tf_input_gradient(optimizer, loss_fn, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss, aux = loss_fn(x)
        scaled = optimizer.scale_loss(loss)
    return aux, tape.gradient(scaled, x)


# PyTorch


def _torch_minimize(optimizer, loss_fn, variables):
    import torch

    loss, aux = loss_fn()
    gradients = torch.autograd.grad(optimizer.scale_loss(loss), [v.value for v in variables])
    with torch.no_grad():
        optimizer.apply(list(gradients), variables)
    return aux


def _torch_record(fn, variables):
    import torch

    output = fn()

    def pullback(g):
        return list(torch.autograd.grad(output, [v.value for v in variables], grad_outputs=g))

    return output, pullback


def _torch_input_gradient(optimizer, loss_fn, x):
    import torch

    x = x.detach().requires_grad_(True)
    loss, aux = loss_fn(x)
    (gradient,) = torch.autograd.grad(optimizer.scale_loss(loss), [x])
    return aux, gradient


# JAX


def _jax_pure(fn: Callable, variables: list) -> tuple[Callable, list]:
    """`fn` as a pure function `pure(values, *args) -> (fn(*args), updates)` of the values
    of `variables`, evaluated in the enclosing stateless scope's state; `updates` maps the
    ids of the variables `fn` assigned to their new values. Also the variables' values."""
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    outer = get_stateless_scope()
    if outer is None:
        raise RuntimeError("on JAX, gradient steps run inside the trainers' stateless steps")

    def pure(values, *args):
        inner = StatelessScope()
        inner.state_mapping = dict(outer.state_mapping)
        inner.state_mapping.update(
            {id(variable): value for variable, value in zip(variables, values, strict=True)}
        )
        before = dict(inner.state_mapping)
        with inner:
            output = fn(*args)
        updates = {k: v for k, v in inner.state_mapping.items() if before.get(k) is not v}
        return output, updates

    current = [outer.get_current_value(v) for v in variables]
    return pure, [v.value if c is None else c for v, c in zip(variables, current, strict=True)]


def _jax_apply(updates: dict) -> None:
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    get_stateless_scope().state_mapping.update(updates)


def _jax_minimize(optimizer, loss_fn, variables):
    import jax

    pure, values = _jax_pure(loss_fn, variables)

    def scaled_loss(values):
        (loss, aux), updates = pure(values)
        return optimizer.scale_loss(loss), (aux, updates)

    (_, (aux, updates)), gradients = jax.value_and_grad(scaled_loss, has_aux=True)(values)
    _jax_apply(updates)
    optimizer.apply(gradients, variables)
    return aux


def _jax_record(fn, variables):
    import jax

    pure, values = _jax_pure(fn, variables)
    output, pullback, updates = jax.vjp(pure, values, has_aux=True)
    _jax_apply(updates)
    return output, lambda g: pullback(g)[0]


def _jax_input_gradient(optimizer, loss_fn, x):
    import jax

    pure, _ = _jax_pure(loss_fn, [])

    def scaled_loss(x):
        (loss, aux), updates = pure([], x)
        return optimizer.scale_loss(loss), (aux, updates)

    (_, (aux, updates)), gradient = jax.value_and_grad(scaled_loss, has_aux=True)(x)
    _jax_apply(updates)
    return aux, gradient


_BACKENDS = {
    "tensorflow": (_tf_minimize, _tf_record, _tf_input_gradient),
    "torch": (_torch_minimize, _torch_record, _torch_input_gradient),
    "jax": (_jax_minimize, _jax_record, _jax_input_gradient),
}
