"""CycleGAN: networks, losses against a hand computation, the image buffer, the learning-rate
schedule, saving, and the app end to end (no target label reaches training)."""

import json
from collections import Counter
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models.cyclegan import CycleGAN, build_cyclegan
from models.cyclegan_networks import (
    build_patchgan_discriminator,
    build_resnet_generator,
    default_residual_blocks,
    patch_downsamplings,
)
from models.image_buffer import ImageBuffer
from models.optimizers import LinearDecay, cyclegan_optimizer
from preprocessing.digits import DigitPair
from preprocessing.files import InputError
from preprocessing.image_folders import read_image_folder

SHAPE = (16, 16, 3)


def tiny_cyclegan(shape=SHAPE, optimizer=lambda: keras.optimizers.Adam(1e-3), **compile_args):
    generators = [build_resnet_generator(shape, 4, 1, name=f"generator_{x}") for x in ("ab", "ba")]
    discriminators = [
        build_patchgan_discriminator(shape, 4, name=f"discriminator_{x}") for x in ("a", "b")
    ]
    model = CycleGAN(*generators, *discriminators, seed=0)
    model.compile(optimizer(), optimizer(), **compile_args)
    return model


def unit_images(n, seed, shape=SHAPE):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype("float32")


def test_shapes_and_parameter_counts():
    x = unit_images(2, 0)
    generator = build_resnet_generator(SHAPE, filters=4, residual_blocks=1)
    fake = keras.ops.convert_to_numpy(generator(x))
    assert fake.shape == (2, *SHAPE) and np.all(np.abs(fake) <= 1)
    discriminator = build_patchgan_discriminator(SHAPE, filters=4)
    assert discriminator(x).shape == (2, 8, 8, 1)  # one stride-2 layer at 16 px

    def conv(k, c_in, c_out, bias=False):
        return k * k * c_in * c_out + (c_out if bias else 0)

    def norm(c):  # instance normalization: a scale and an offset per channel
        return 2 * c

    expected = conv(7, 3, 4) + norm(4)  # c7s1-4
    expected += conv(3, 4, 8) + norm(8) + conv(3, 8, 16) + norm(16)  # d8, d16
    expected += 2 * (conv(3, 16, 16) + norm(16))  # one residual block
    expected += conv(3, 16, 8) + norm(8) + conv(3, 8, 4) + norm(4)  # u8, u4
    expected += conv(7, 4, 3, bias=True)  # c7s1-3
    assert generator.count_params() == expected == 8811
    expected = conv(4, 3, 4, bias=True) + conv(4, 4, 8) + norm(8) + conv(4, 8, 1, bias=True)
    assert discriminator.count_params() == expected == 853
    assert [default_residual_blocks(s) for s in (32, 128, 256)] == [3, 6, 9]
    assert [patch_downsamplings(s) for s in (16, 32, 64, 128, 256)] == [1, 1, 2, 3, 3]


def test_losses_match_a_hand_computation():
    """One eager train_step with a zero learning rate against NumPy losses of the same nets."""
    model = tiny_cyclegan(
        optimizer=lambda: keras.optimizers.SGD(0.0), cycle_weight=3.0, identity_weight=0.2
    )
    a, b = unit_images(4, 1), unit_images(4, 2)
    logs = {k: float(v) for k, v in model.train_step((a, b)).items()}

    def run(net, x):
        return keras.ops.convert_to_numpy(getattr(model, net)(x)).astype("float64")

    def l1(x, y):
        return float(np.mean(np.abs(x - y)))

    def ls(scores, target):
        return float(np.mean((scores - target) ** 2))

    fake_b, fake_a = run("generator_ab", a), run("generator_ba", b)
    expected = {
        "g_ab_adv": ls(run("discriminator_b", fake_b), 1),
        "g_ba_adv": ls(run("discriminator_a", fake_a), 1),
        "cycle_a": l1(run("generator_ba", fake_b), a),
        "cycle_b": l1(run("generator_ab", fake_a), b),
        "identity_a": l1(run("generator_ba", a), a),
        "identity_b": l1(run("generator_ab", b), b),
        # the buffers, filling, hand the translations on unchanged
        "d_a": 0.5 * (ls(run("discriminator_a", a), 1) + ls(run("discriminator_a", fake_a), 0)),
        "d_b": 0.5 * (ls(run("discriminator_b", b), 1) + ls(run("discriminator_b", fake_b), 0)),
    }
    cycle = expected["cycle_a"] + expected["cycle_b"]
    identity = expected["identity_a"] + expected["identity_b"]
    expected |= {
        "cycle_loss": cycle,
        "g_loss": expected["g_ab_adv"] + expected["g_ba_adv"] + 3.0 * (cycle + 0.2 * identity),
        "d_loss": expected["d_a"] + expected["d_b"],
    }
    assert set(logs) == set(CycleGAN.LOSSES)
    for name, value in expected.items():
        assert logs[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_image_buffer_fills_then_swaps_half_the_images():
    buffer = ImageBuffer((1, 1, 1), size=50, seed=0)
    stored = lambda: Counter(buffer.images.numpy().ravel().tolist())  # noqa: E731
    counter = iter(range(1, 10_000))

    def batch(n):
        return np.array([next(counter) for _ in range(n)], "float32").reshape(n, 1, 1, 1)

    first = batch(30)
    np.testing.assert_array_equal(buffer(first), first)  # while filling: the inputs
    assert int(buffer.count) == 30
    # 20 images fill it up; the other 20 meet a full buffer, some slots twice in one batch
    second = batch(40)
    out = np.asarray(buffer(second))
    np.testing.assert_array_equal(out[:20], second[:20])
    assert int(buffer.count) == 50 and buffer.images.shape == (50, 1, 1, 1)
    pool = Counter(first.ravel().tolist()) + Counter(second[:20].ravel().tolist())
    # full: an image either passes through or swaps with a stored one, nothing is lost
    assert stored() + Counter(out[20:].ravel().tolist()) == pool + Counter(
        second[20:].ravel().tolist()
    )

    swapped = 20 - int(np.sum(out[20:] == second[20:]))
    step = tf.function(buffer.__call__)  # as inside a compiled train_step
    for _ in range(8):
        before, x = stored(), batch(25)
        out = np.asarray(step(x))
        assert stored() + Counter(out.ravel().tolist()) == before + Counter(x.ravel().tolist())
        assert int(buffer.count) == 50 and sum(stored().values()) == 50
        swapped += int(np.sum(out != x))
    assert 0.35 < swapped / 220 < 0.65  # probability 0.5


def test_linear_decay_and_its_serialization():
    schedule = LinearDecay(1e-3, 100)
    values = [float(schedule(step)) for step in (0, 49, 50, 75, 99, 100, 150)]
    np.testing.assert_allclose(values, [1e-3, 1e-3, 1e-3, 5e-4, 2e-5, 0, 0], atol=1e-9)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(again, LinearDecay) and again.get_config() == schedule.get_config()
    optimizer = cyclegan_optimizer(10)
    assert optimizer.beta_1 == 0.5 and float(optimizer.learning_rate) == pytest.approx(2e-4)


def test_train_steps_stay_finite_and_save_load_round_trips(tmp_path):
    model = tiny_cyclegan(run_eagerly=True)
    nets = [getattr(model, name) for name in CycleGAN.NETWORKS]
    before = [net.get_weights() for net in nets]
    data = tf.data.Dataset.from_tensors((unit_images(4, 3), unit_images(4, 4))).repeat()
    history = model.fit(data, steps_per_epoch=3, epochs=1, verbose=0).history
    assert set(history) == set(CycleGAN.LOSSES)
    assert all(np.isfinite(v[-1]) for v in history.values())
    for net, old in zip(nets, before, strict=True):
        assert any(not np.array_equal(x, y) for x, y in zip(old, net.get_weights(), strict=True))

    model.save(tmp_path / "cyclegan.keras")
    loaded = keras.models.load_model(tmp_path / "cyclegan.keras")
    assert isinstance(loaded, CycleGAN)
    x = unit_images(3, 5)
    for name in CycleGAN.NETWORKS:
        np.testing.assert_allclose(getattr(loaded, name)(x), getattr(model, name)(x), atol=1e-6)
    np.testing.assert_array_equal(loaded.buffer_b.images.numpy(), model.buffer_b.images.numpy())
    assert int(loaded.buffer_a.count) == 12
    config = build_cyclegan(SHAPE, 20, 1, 4).g_optimizer.get_config()["learning_rate"]
    assert keras.optimizers.schedules.deserialize(config).total_steps == 20


POISON = 77  # no digit class: a 77 anywhere in training is a target label


def test_app_on_tiny_digits_never_trains_on_target_labels(tmp_path, monkeypatch):
    """The app end to end on a tiny pair with poisoned target labels, spying on train_step."""
    from apps import train_cyclegan as app

    n = 60
    rng = np.random.default_rng(0)
    source, target = rng.integers(0, 256, (2, n, 32, 32, 3), dtype=np.uint8)
    pair = DigitPair("poisoned", source, np.arange(n) % 10, target, np.full(n, POISON), demo=True)
    received, train_step = [], CycleGAN.train_step

    def spy(self, data):
        received.append([np.asarray(t) for t in tf.nest.flatten(data)])
        return train_step(self, data)

    monkeypatch.setattr(CycleGAN, "train_step", spy)
    monkeypatch.setattr(app.common, "pair_from_flags", lambda args: pair)
    monkeypatch.setattr(
        app, "build_cyclegan", lambda *a, **k: build_cyclegan(*a, **k, run_eagerly=True)
    )
    out = tmp_path / "run"
    argv = ["--out", str(out), "--pair", "digits-demo", "--steps", "2", "--epochs", "2"]
    argv += ["--residual-blocks", "1", "--filters", "4", "--classifier-epochs", "1", "--quick"]
    app.main(app.parser().parse_args([*argv, "--batch-size", "4"]))
    assert len(received) == 2
    for batch in received:  # exactly (x_a, x_b): two image tensors, no labels
        assert [x.shape for x in batch] == [(4, 32, 32, 3)] * 2
        assert all(x.dtype == np.float32 for x in batch)

    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics["model"]) == ["CycleGAN + classifier"]
    assert metrics.loc[0, "target_all_accuracy"] == 0  # poisoned labels: evaluation only
    assert 0 <= metrics.loc[0, "source_test_accuracy"] <= 1
    generative = pd.read_csv(out / "generative.csv")  # FID, KID, PRDC in a named space
    assert "CycleGAN translations of demo source (sklearn digits)" in set(generative["images"])
    assert generative["feature_space"].str.contains("classifier").all()
    with np.load(out / "samples.npz") as samples:
        assert list(samples["epochs"]) == [1, 2]
        assert samples["aba"].shape == (2, 8, 32, 32, 3)
    # drawn by draw_figures (what apps.make_figures calls) from the run folder's files alone
    figures = ["cycle_a.png", "cycle_b.png", "losses.png", "classifier_curves.png"]
    assert all((out / "figures" / name).stat().st_size > 10_000 for name in figures)
    assert "No demo target (skimage photos) label" in (out / "report.md").read_text()


def test_folders_of_unpaired_images(tmp_path, monkeypatch, capsys):
    from apps import train_cyclegan as app

    rng = np.random.default_rng(0)
    for name, count in (("horse", 5), ("zebra", 6)):
        (tmp_path / name).mkdir()
        for i in range(count):
            image = rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), image)
    (tmp_path / "zebra" / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    for folder, message in (("missing", "no such folder"), ("empty", "no readable image")):
        with pytest.raises(InputError, match=f"--domain-a .*{folder}: {message}"):
            read_image_folder(tmp_path / folder, 16, "--domain-a")
    for argv, message in (
        (["--domain-a", str(tmp_path / "horse")], "--domain-a and --domain-b go together"),
        (["--pair", "digits-demo", "--size", "64"], "--size goes with --domain-a/--domain-b"),
    ):
        with pytest.raises(InputError, match=message):
            app.main(app.parser().parse_args([*argv, "--out", str(tmp_path / "refused")]))

    monkeypatch.setattr(
        app, "build_cyclegan", lambda *a, **k: build_cyclegan(*a, **k, run_eagerly=True)
    )
    out = tmp_path / "run"
    argv = ["--domain-a", str(tmp_path / "horse"), "--domain-b", str(tmp_path / "zebra")]
    argv += ["--size", "16", "--steps", "2", "--epochs", "1", "--residual-blocks", "1"]
    app.main(app.parser().parse_args([*argv, "--filters", "4", "--out", str(out)]))
    assert "zebra: skipped 1 unreadable files (first: notes.txt)" in capsys.readouterr().out
    metrics = pd.read_csv(out / "metrics.csv")
    assert (metrics.loc[0, "images_a"], metrics.loc[0, "images_b"]) == (5, 6)
    with np.load(out / "samples.npz") as samples:
        assert samples["ab"].shape == (1, 5, 16, 16, 3)
        assert list(samples["names"]) == ["horse", "zebra"]
    assert (out / "figures" / "cycle_b.png").is_file()
    assert not (out / "classifier").exists()


def test_pixelda_table_takes_cyclegan_rows(tmp_path):
    """train_pixelda --compare DIR: a finished CycleGAN digits run on the same pair and seed."""
    from apps import train_pixelda

    args = train_pixelda.parser().parse_args(["--pair", "digits-demo", "--compare", "x", "y"])
    assert args.compare == [Path("x"), Path("y")]

    def run(name, **config):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"app": "train_cyclegan", **config}))
        row = "CycleGAN + classifier,0.97,0.6,0.61,1400"
        columns = "model,source_test_accuracy,target_test_accuracy,target_all_accuracy,train_images"
        (folder / "metrics.csv").write_text(f"{columns}\n{row}\n")
        return folder

    row = train_pixelda.read_compared(run("digits", pair="digits-demo", seed=0), args)
    assert row == {
        "model": "CycleGAN + classifier",
        "source_test_accuracy": 0.97,
        "target_test_accuracy": 0.6,
        "target_all_accuracy": 0.61,
    }
    for name, config, message in (
        ("seed", {"pair": "digits-demo", "seed": 1}, "with --pair digits-demo --seed 1, not --"),
        ("horses", {"domain_a": "h", "domain_b": "z", "seed": 0}, "a run on two image folders"),
    ):
        with pytest.raises(InputError, match=message):
            train_pixelda.read_compared(run(name, **config), args)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text('{"app": "train_classifier"}')
    with pytest.raises(InputError, match="a run folder of train_classifier, not of train_cyc"):
        train_pixelda.read_compared(tmp_path / "unfinished", args)
