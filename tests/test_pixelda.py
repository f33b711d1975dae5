"""PixelDA: networks, the custom train_step, saving, and that target labels never train."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models.classifier import build_classifier
from models.optimizers import TorchAdam
from models.pixelda import PRESETS, PixelDA, build_pixelda
from models.pixelda_networks import build_discriminator, build_generator
from preprocessing.digit_pipelines import adaptation_dataset
from preprocessing.digits import DigitPair

BATCH = 8


def small_pixelda(noise_std: float = 0.2, dropout: float = 0.1, **compile_args) -> PixelDA:
    """The paper's structure with few filters, so that tests run fast."""
    model = PixelDA(
        build_generator(filters=8, residual_blocks=1),
        build_discriminator(filters=(8, 16), noise_std=noise_std, dropout=dropout),
        build_classifier(),
        seed=0,
    )
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), **compile_args)
    return model


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / 127.5 - 1).astype("float32")


def test_shapes():
    x = unit(images(2, 0))
    z = np.random.default_rng(0).uniform(-1, 1, (2, 10)).astype("float32")
    fake = keras.ops.convert_to_numpy(build_generator()([x, z]))
    assert fake.shape == (2, 32, 32, 3) and np.all(np.abs(fake) <= 1)
    p = keras.ops.convert_to_numpy(build_discriminator()(x))
    assert p.shape == (2, 1) and np.all((p >= 0) & (p <= 1))
    assert PixelDA()(x).shape == (2, 10)


def test_parameter_counts():
    def conv(c_in, c_out, k=3):
        return k * k * c_in * c_out + c_out

    bn = 4  # gamma, beta, moving mean, moving variance per channel
    generator = (10 * 1024 + 1024) + conv(4, 64) + 6 * 2 * (conv(64, 64) + bn * 64)
    generator += conv(64, 3)
    channels = (3, 64, 128, 256, 512)
    discriminator = sum(
        conv(a, b) + bn * b for a, b in zip(channels[:-1], channels[1:], strict=True)
    )
    discriminator += 512 * 2 * 2 + 1  # 32 px halved four times -> 2x2x512 -> dense 1
    assert build_generator().count_params() == generator == 461_571
    assert build_discriminator().count_params() == discriminator == 1_556_865


def test_noise_and_dropout_only_in_training():
    d = build_discriminator()
    kinds = {type(layer).__name__ for layer in d.layers}
    assert {"GaussianNoise", "Dropout"} <= kinds
    x = unit(images(4, 1))
    np.testing.assert_array_equal(d(x, training=False), d(x, training=False))
    assert not np.allclose(d(x, training=True), d(x, training=True))
    model = PixelDA(discriminator=d)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_train_steps_change_every_network_and_stay_finite():
    model = small_pixelda()
    nets = (model.generator, model.discriminator, model.classifier)
    before = [[w.copy() for w in net.get_weights()] for net in nets]
    ds = adaptation_dataset(images(40, 0), np.arange(40) % 10, images(40, 1), BATCH, seed=0)
    history = model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0).history
    assert set(PixelDA.LOSSES) | {"d_accuracy"} <= set(history)
    assert all(np.isfinite(v[-1]) for v in history.values())
    for net, old in zip(nets, before, strict=True):
        new = net.get_weights()
        assert all(np.all(np.isfinite(w)) for w in new)
        assert any(not np.array_equal(a, b) for a, b in zip(old, new, strict=True)), net.name


def test_losses_match_a_hand_computation():
    """One eager train_step on a fixed batch against NumPy losses of the same outputs."""
    model = small_pixelda(noise_std=0.0, dropout=0.0)  # D deterministic given the batch
    model.compile(
        keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), w_d=0.5, w_g_adv=0.3, w_g_task=0.2
    )
    x_s, x_t = unit(images(BATCH, 2)), unit(images(BATCH, 3))
    y_s = np.arange(BATCH) % 10
    fakes = []
    generate = model.generate
    model.generate = lambda x, training=False: fakes.append(generate(x, training)) or fakes[-1]
    d_before = [v.numpy() for v in model.d_variables]
    logs = {k: float(v) for k, v in model.train_step(((x_s, y_s), x_t)).items()}
    fake = fakes[0].numpy()

    def bce(p, label):
        p = np.asarray(p, "float64").ravel()
        return float(np.mean(-np.log(p if label else 1 - p)))

    def ce(logits, labels):
        logits = np.asarray(logits, "float64")
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return float(-np.mean(logp[np.arange(len(labels)), labels]))

    # G step: against the updated D and T.
    d, t = model.discriminator, model.classifier
    g_adv, g_task = bce(d(fake, training=True), 1), ce(t(fake), y_s)
    expected = {"g_adv_loss": g_adv, "g_task_loss": g_task, "g_loss": 0.3 * g_adv + 0.2 * g_task}
    # D step: with D and T as they were before the step.
    for v, value in zip(model.d_variables, d_before, strict=True):
        v.assign(value)
    p_real, p_fake = d(x_t, training=True), d(fake, training=True)
    domain = bce(p_real, 1) + bce(p_fake, 0)
    task = ce(t(x_s), y_s) + ce(t(fake), y_s)
    hits = np.concatenate([np.ravel(p_real) > 0.5, np.ravel(p_fake) <= 0.5])
    expected |= {
        "domain_loss": domain,
        "task_loss": task,
        "d_loss": 0.5 * domain + task,
        "d_accuracy": hits.mean(),
    }
    for name, value in expected.items():
        assert logs[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_save_and_load_round_trip(tmp_path):
    model = small_pixelda()
    model.train_step(((unit(images(BATCH, 0)), np.arange(BATCH) % 10), unit(images(BATCH, 1))))
    model.save(tmp_path / "pixelda.keras")
    loaded = keras.models.load_model(tmp_path / "pixelda.keras")
    x = unit(images(5, 4))
    z = np.random.default_rng(0).uniform(-1, 1, (5, 10)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for name in ("generator", "discriminator", "classifier"):
        assert isinstance(getattr(loaded, name), keras.Model)
        assert getattr(loaded, name).name == name
    np.testing.assert_allclose(loaded.generator([x, z]), model.generator([x, z]), atol=1e-6)


def test_presets_are_data_with_the_issue_numbers():
    assert (PRESETS["homework"].w_d, PRESETS["paper"].w_d) == (0.013, 0.1356)
    model = build_pixelda(PRESETS["paper"])
    assert (model.w_d, model.w_g_adv, model.w_g_task) == (0.1356, 0.01132, 0.01010)


@pytest.mark.parametrize(("preset", "noise"), [("homework", "normal"), ("paper", "uniform")])
def test_presets_draw_the_generator_noise_of_their_code(preset, noise, monkeypatch):
    """Homework: torch.randn, N(0, 1); paper (official code): U(-1, 1). The z the generator
    receives is recorded; 4,000 draws tell the two apart far beyond chance: their range
    (N(0, 1) exceeds 1 in about 32% of draws) and their variance (1 vs 1/3)."""
    model = build_pixelda(PRESETS[preset], seed=0)
    assert model.noise == noise == PRESETS[preset].noise
    seen = []
    call = model.generator.call
    monkeypatch.setattr(model.generator, "call", lambda x, **kw: seen.append(x[1]) or call(x, **kw))
    model.generate(unit(images(400, 0)))
    z = keras.ops.convert_to_numpy(seen[0])
    assert z.shape == (400, 10)
    if noise == "normal":
        assert np.abs(z).max() > 1.5 and z.var() == pytest.approx(1.0, abs=0.1)
    else:
        assert np.abs(z).max() <= 1.0 and z.var() == pytest.approx(1 / 3, abs=0.05)
    loaded = PixelDA.from_config({**model.get_config()})
    assert loaded.noise == noise
    config = model.get_config()
    del config["noise"]  # a model saved before the choice existed drew U(-1, 1)
    assert PixelDA.from_config(config).noise == "uniform"


@pytest.mark.parametrize(
    ("preset", "epsilon", "clipnorm"), [("homework", 1e-5, None), ("paper", 1e-3, 5.0)]
)
def test_presets_set_batch_norm_and_optimizer_as_their_code(preset, epsilon, clipnorm):
    """Homework: PyTorch's BatchNorm2d defaults (momentum 0.1 = Keras' 0.9, eps 1e-5) and
    Adam's coupled weight decay. Paper: slim's batch norm (decay 0.9, eps 1e-3), clipping 5."""
    model = build_pixelda(PRESETS[preset])
    norms = [
        layer
        for net in (model.generator, model.discriminator)
        for layer in net.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 12 + 4
    assert {(n.momentum, n.epsilon) for n in norms} == {(0.9, epsilon)}
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert isinstance(optimizer, TorchAdam)
        assert (optimizer.l2, optimizer.clipnorm) == (1e-5, clipnorm)


POISON = 77  # no digit class: any 77 inside train_step is a target label


def test_no_target_label_reaches_train_step(tmp_path, monkeypatch):
    """Run the app on a tiny pair whose target labels are poison; spy on train_step."""
    from apps import train_pixelda as app

    n = 60
    labels = np.arange(n) % 10
    pair = DigitPair("poisoned", images(n, 5), labels, images(n, 6), np.full(n, POISON))
    received, train_step = [], PixelDA.train_step

    def spy(self, data):
        def record(*tensors):
            received.append([t.numpy() for t in tensors])
            return 0

        tf.py_function(record, tf.nest.flatten(data), Tout=tf.int32)
        return train_step(self, data)

    monkeypatch.setattr(PixelDA, "train_step", spy)
    monkeypatch.setattr(app.common, "pair_from_flags", lambda args: pair)
    monkeypatch.setattr(
        app, "build_pixelda", lambda preset, seed, **_: small_pixelda(run_eagerly=True)
    )
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "config.json").write_text(
        '{"app": "train_classifier", "pair": "digits-demo", "seed": 0}'
    )
    pd.DataFrame(
        [{"model": "source only", "source_test_accuracy": 0.9, "target_all_accuracy": 0.5}]
    ).to_csv(baseline / "metrics.csv", index=False)
    args = app.parser().parse_args(
        ["--out", str(tmp_path / "run"), "--steps", "2", "--epochs", "1", "--quick"]
        + ["--pair", "digits-demo", "--batch-size", str(BATCH), "--baseline", str(baseline)]
    )
    app.main(args)
    assert len(received) == 2
    for x_s, y_s, x_t in received:  # exactly ((x_s, y_s), x_t): one integer tensor
        assert x_s.shape == x_t.shape == (BATCH, 32, 32, 3)
        assert np.all(y_s < 10) and not np.any(np.isin(y_s, POISON))
    figures = [tmp_path / "run" / "figures" / f for f in ("samples.png", "history.png")]
    for figure in figures:
        figure.unlink()
    app.draw_figures(tmp_path / "run")  # what apps.make_figures calls
    assert all(f.exists() for f in figures)
    table = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(table["model"]) == ["source only", "PixelDA"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Preset `homework`" in report and "| w_d | 0.013 |" in report


def test_adaptation_dataset_hides_the_pairing_and_resumes_exactly():
    n = 20
    index = np.arange(n, dtype=np.uint8)
    source = np.broadcast_to(index[:, None, None, None], (n, 32, 32, 3)).copy()
    target = source + 100
    ds = adaptation_dataset(source, index % 10, target, 4, seed=0)
    batches = list(ds.take(10).as_numpy_iterator())

    def ids(x):
        return np.round((x[:, 0, 0, 0] + 1) * 127.5).astype(int)

    same = [np.array_equal(ids(x_s), ids(x_t) - 100) for (x_s, _), x_t in batches]
    assert not any(same)
    assert all(np.array_equal(ids(x_s) % 10, y_s) for (x_s, y_s), _ in batches)
    resumed = adaptation_dataset(source, index % 10, target, 4, seed=0, start_step=6)
    for a, b in zip(batches[6:], resumed.take(4).as_numpy_iterator(), strict=True):
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0][0], b[0][0])


@pytest.mark.backends
def test_dropout_draws_from_a_state_the_resume_restores():
    """Keras on PyTorch draws an unseeded dropout from torch's global generator, which no
    checkpoint holds: a resumed run then drew other masks (d_loss 4.6269 vs 4.6303 at epoch
    2). Every dropout layer must be seeded (other random layers draw from their own state on
    every backend)."""
    model = build_pixelda(PRESETS["homework"], seed=0)
    dropouts = [
        layer
        for net in (model.generator, model.discriminator, model.classifier)
        for layer in net.layers
        if isinstance(layer, keras.layers.Dropout)
    ]
    assert len(dropouts) == 4
    assert all(layer.seed is not None for layer in dropouts)
