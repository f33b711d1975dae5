"""How long a run trains: epochs and steps per epoch from --steps, --epochs and --quick."""

from __future__ import annotations

import math

QUICK_STEPS = 300  # the steps of a --quick run
STEP_EPOCHS, QUICK_EPOCHS = 10, 3  # the epochs a --steps run is cut into (--quick: 3)


def schedule(
    n_train: int,
    batch_size: int,
    default_epochs: int,
    steps: int | None = None,
    epochs: int | None = None,
    quick: bool = False,
) -> tuple[int, int]:
    """(epochs, steps per epoch): `steps` in all (--quick: `QUICK_STEPS`) cut into `epochs`
    (default `STEP_EPOCHS`, --quick `QUICK_EPOCHS`); without steps, `epochs` (default
    `default_epochs`) full passes over `n_train` examples."""
    steps = steps or (QUICK_STEPS if quick else None)
    if steps is not None:
        epochs = epochs or (QUICK_EPOCHS if quick else STEP_EPOCHS)
        return epochs, math.ceil(steps / epochs)
    return epochs or default_epochs, max(1, n_train // batch_size)
