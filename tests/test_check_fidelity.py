"""The fidelity check (`evaluation.fidelity`): the Keras homework preset and the PyTorch
mirror of the homework's code agree step for step, and the check fails on a wrong detail."""

import pytest

pytest.importorskip("torch")

from evaluation.fidelity import check, keras_run  # noqa: E402
from evaluation.fidelity_rows import failures  # noqa: E402

STEPS, BATCH = (1, 2), 4


@pytest.fixture(scope="module")
def keras_side():
    return keras_run(max(STEPS), BATCH, 0, STEPS)


def test_the_homework_preset_matches_the_pytorch_code(keras_side):
    tables = check(STEPS, BATCH, keras_side=keras_side)
    for step, rows in tables.items():
        assert failures(rows) == [], step
        assert any(r.status.startswith("deliberate") for r in rows)  # shown, not failing


@pytest.mark.parametrize(
    ("wrong", "failing"),
    [({"betas": (0.9, 0.999)}, "Adam m"), ({"w_d": 0.13}, "D/T loss, step 1")],
    ids=["beta_1", "w_d"],
)
def test_the_check_fails_on_a_wrong_detail(keras_side, wrong, failing):
    rows = check((1,), BATCH, keras_side=keras_side, **wrong)[1]
    assert any(failing in name for name in failures(rows))
