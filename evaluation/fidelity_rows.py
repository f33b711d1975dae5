"""The rows of the fidelity table (`evaluation.fidelity`): each compared quantity, its
largest difference and its tolerance, from float32 arithmetic and the number of steps.

Tolerances (EPS = 2^-24, float32's unit roundoff). A reduction of n terms errs by about
sqrt(n) EPS relative; a pass through layers of fan-in n_1, n_2, ... by SAFETY * EPS *
sum(sqrt(n_i)) over G, D and T (the forward tolerance, about 5.6e-4 here: SAFETY covers sums
that cancel, as batch norm's centred gradients do); a backward pass twice that. Step 1 is
held to these: its losses (forward), Adam's m (a gradient) and v (a squared one, 2x). Where a
network's gradient cancels more (G's, through the batch norms of G and D), its m and v may
differ by up to 4 times what nudging every weight by 2^-22 (a few roundings) changes them on
the PyTorch side: the model's own amplification of rounding at that point, not a fitted
number.

Adam's step lr * m_hat / (sqrt(v_hat) + eps) is at most about lr, whatever the gradient, so
weights are compared in absolute units of lr: after k steps no weight can differ by more
than 2 k lr (both sides stepping their full size apart), plus the rounding of each stored
weight (EPS |w| a step and side). Where |g| is below the rounding of its own sum (or near
Adam's eps, 1e-8), a rounding difference flips the step's sign, so some weights differ by up
to 2 lr already at step 1. How many depends on the CPU's summation order and on how many of
the model's gradients cancel to their own rounding (G's: 0.02% on an AVX2 Zen 3, 0.17% on an
AVX-512 Xeon), so the share of weights differing by more than FLIP lr is held to 4 times the
share that the 2^-22 nudge moves so on the PyTorch side, plus FLIP_COUNT weights (a count of a
few cannot be estimated from one nudge). The conv biases right before
a batch norm have a gradient of exactly 0 plus rounding noise, so all of them take such
steps; they count only in the 2 k lr bound, and through the batch norm's running mean (which
carries the bias: 0.1 of it per update, at most 2 k lr in all). After step 1 such flips feed
the next gradients: the float32 trajectories of this GAN separate within a few steps (here,
in both frameworks alike), so later steps are held only to the 2 k lr bounds, and their
losses are shown for information.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from evaluation.reports import markdown_table
from evaluation.torch_pixelda import parameter_names

EPS = 2.0**-24
SAFETY = 16.0  # sums that cancel (batch norm's centred gradients) lose more than sqrt(n) EPS
FLIP = 1e-2  # a weight "differs" at step 1 when by more than 1% of one Adam step (lr)
FLIP_COUNT = 10  # weights allowed to differ so beyond 4x the nudge's share (see above)
PASSES = 3  # D runs three times a step: real target, fake (D step), fake (G step)
NETWORKS = {"generator": "g.", "discriminator": "d.", "classifier": "t."}  # name prefixes


@dataclasses.dataclass(frozen=True)
class Row:
    quantity: str
    difference: float
    tolerance: float
    status: str  # "ok", "FAIL", or "deliberate: ..." / "deviation: ..." (never failing)

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def _cat(arrays: dict, names: list) -> np.ndarray:
    return np.concatenate([np.asarray(arrays[n], np.float64).ravel() for n in names])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _row(quantity: str, difference: float, tolerance: float, note: str = "") -> Row:
    return Row(
        quantity, difference, tolerance, note or ("ok" if difference <= tolerance else "FAIL")
    )


def _pre_bn_biases() -> set[str]:
    """Biases of the convs right before a batch norm: BN's mean removes them, so their
    gradient is 0 plus rounding noise, which Adam turns into steps of up to lr."""
    out = set()
    for names in parameter_names().values():
        out |= {f"{a}.bias" for a, b in zip(names[:-1], names[1:], strict=True) if ".bn" in b}
    return out


def compare(keras_side: dict, torch_side: dict, step: int, lr: float) -> list[Row]:
    """The table rows after `step` steps (see the module's note for the tolerances)."""
    eps_fwd = SAFETY * EPS * sum(math.sqrt(n) for n in keras_side["fan_ins"])
    eps_grad = 2 * eps_fwd  # a backward pass: the forward's sums and as many again
    k_arr, k_mom = (keras_side["snapshots"][step][x] for x in ("arrays", "moments"))
    t_arr, t_mom = (torch_side["snapshots"][step][x] for x in ("arrays", "moments"))
    biases = _pre_bn_biases()
    k_loss, t_loss = (np.array(s["losses"][:step], np.float64) for s in (keras_side, torch_side))
    rows = [
        _row(
            "random draws consumed as predicted (seed-state difference)",
            keras_side["draws_missed"],
            0,
        )
    ]
    later = "info: float32 trajectories separate after step 1 (Adam amplifies rounding)"
    for i, name in enumerate(("D/T loss", "G loss")):
        rel = np.abs(k_loss[:, i] - t_loss[:, i]) / np.abs(t_loss[:, i])
        rows.append(_row(f"{name}, step 1 (relative)", float(rel[0]), eps_fwd))
        if step > 1:
            rows.append(
                _row(f"{name}, steps 2-{step} (max relative)", float(rel[1:].max()), 1.0, later)
            )
    for net in NETWORKS:
        names = [n for n in k_mom if n.startswith(NETWORKS[net])]
        weights = _cat(t_arr, names)
        dw = np.abs(_cat(k_arr, names) - weights) / lr
        stored = 2 * step * EPS * float(np.abs(weights).max()) / lr  # rounding of w itself
        rows.append(_row(f"{net} weights: max |dw| / lr", float(dw.max()), 2.0 * step + stored))
        if step == 1:
            plain = [n for n in names if n not in biases]
            reference = _cat(t_arr, plain)
            flipped, nudge_flipped = (
                np.abs(_cat(arrays, plain) - reference) / lr > FLIP
                for arrays in (k_arr, torch_side["nudged"]["arrays"])
            )
            rows.append(
                _row(
                    f"{net} weights: share with |dw| > {FLIP} lr",
                    float(flipped.mean()),
                    4 * float(nudge_flipped.mean()) + FLIP_COUNT / flipped.size,
                )
            )
            nudged = torch_side["nudged"]["moments"]
            for j, moment in enumerate(("m", "v")):
                got, want, near = (
                    _cat({n: mom[n][j] for n in names}, names) for mom in (k_mom, t_mom, nudged)
                )
                tolerance = max(eps_grad * (1 + j), 4 * _rel(near, want))
                rows.append(
                    _row(f"{net} Adam {moment}: |d| / |{moment}|", _rel(got, want), tolerance)
                )
        stats = [n for n in k_arr if n.startswith(NETWORKS[net]) and n.endswith("running_mean")]
        if stats:
            scale = float(np.abs(_cat(t_arr, stats)).max())
            diff = float(np.abs(_cat(k_arr, stats) - _cat(t_arr, stats)).max())
            tol = eps_fwd * scale + 2 * step * lr
            rows.append(_row(f"{net} BN running mean: max |d|", diff, tol, later * (step > 1)))
            variances = _variance_rows(net, k_arr, t_arr, step, eps_fwd, keras_side["counts"])
            if step > 1:  # statistics of activations that have separated with the weights
                variances[1] = dataclasses.replace(variances[1], status=later)
            rows += variances
    return rows


def _variance_rows(net, k_arr, t_arr, step, eps_fwd, counts) -> list[Row]:
    """PyTorch's running variance is unbiased, Keras' biased (deliberate, docs/fidelity.md):
    both start at 1 and move 0.1 of the way to each batch's variance of n values, so
    PyTorch's minus momentum^u is n / (n - 1) times Keras'; compared after undoing that."""
    names = [n for n in k_arr if n.startswith(NETWORKS[net]) and n.endswith("running_var")]
    updates = step * (PASSES if net == "discriminator" else 1)
    base = 0.9**updates
    biased = {}
    for n in names:
        count = counts[n.rsplit(".", 1)[0]]
        biased[n] = base + (t_arr[n].astype(np.float64) - base) * (count - 1) / count
    k, t, b = _cat(k_arr, names), _cat(t_arr, names), _cat(biased, names)
    note = "deliberate: PyTorch's running variance is unbiased n/(n-1), Keras' biased"
    return [
        _row(f"{net} BN running variance: max |d|", float(np.abs(k - t).max()), 0.0, note),
        _row(
            f"{net} BN running variance x (n-1)/n: max |d|",
            float(np.abs(k - b).max()),
            2 * eps_fwd * float(b.max()),
        ),
    ]


def failures(rows: list[Row]) -> list[str]:
    return [row.quantity for row in rows if row.failed]


def table(rows: list[Row]) -> str:
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    frame["difference"] = frame["difference"].map(lambda v: f"{v:.3g}")
    frame["tolerance"] = frame["tolerance"].map(lambda v: f"{v:.3g}")
    return markdown_table(frame)
