"""FID, KID and precision/recall/density/coverage against known answers; the feature spaces;
the apps' generative metrics (which images, which feature space)."""

import json
import re

import keras
import numpy as np
import pytest

from evaluation import domain_adaptation, feature_spaces, generative
from evaluation.domain_adaptation import target_feature_space, translation_metrics
from evaluation.feature_spaces import FeatureSpace, inception_space, model_space
from evaluation.generative import fid, generative_metrics, generative_table, kid, prdc
from evaluation.vae_quality import sample_metrics
from models.classifier import build_classifier
from preprocessing.digit_splits import split_pairs
from preprocessing.digits import DigitPair
from preprocessing.files import InputError
from tests.endovae_helpers import random_images, tiny_vae


def exact_gaussian(n: int, mean: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """n points whose sample mean is `mean` and sample covariance is diag(std^2), exactly."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened
    return mean + z * std


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((200, 16))
    assert fid(x, x) == pytest.approx(0, abs=1e-8)
    few = x[:5]  # fewer points than dimensions: singular covariance
    assert fid(few, few) == pytest.approx(0, abs=1e-8)


def test_fid_matches_the_closed_form_for_two_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 0.5, 3.0])
    a, b = exact_gaussian(300, mu1, s1, 1), exact_gaussian(400, mu2, s2, 2)
    # diagonal covariances: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum (s1 - s2)^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert fid(a, b) == pytest.approx(expected, rel=1e-9)
    # full covariances: Tr (S1 S2)^(1/2) from the (real, non-negative) eigenvalues of S1 S2
    rng = np.random.default_rng(3)
    c, d = rng.standard_normal((50, 6)) @ rng.random((6, 6)), rng.standard_normal((60, 6))
    c1, c2 = np.cov(c, rowvar=False), np.cov(d, rowvar=False)
    cross = np.sqrt(np.linalg.eigvals(c1 @ c2).real.clip(0)).sum()
    diff = c.mean(0) - d.mean(0)
    assert fid(c, d) == pytest.approx(diff @ diff + np.trace(c1 + c2) - 2 * cross, rel=1e-7)


def test_kid_is_unbiased_on_one_distribution_and_positive_on_two():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    mean, se = kid(a, b, subsets=50, subset_size=100)
    assert se > 0 and abs(mean) < 3 * se
    shifted, shifted_se = kid(a, b + 1.0, subsets=50, subset_size=100)
    assert shifted > 10 * shifted_se and shifted > 0.1
    # subsets of the smaller set's size cap at half of it, so they differ
    _, capped_se = kid(a[:40], b, subsets=10, subset_size=1000)
    assert capped_se > 0


def test_prdc_on_point_clouds_with_known_answers():
    rng = np.random.default_rng(0)
    mode_a = rng.normal(0, 1, (100, 2))
    mode_b = rng.normal(0, 1, (100, 2)) + 50
    real = np.concatenate([mode_a, mode_b])
    same = prdc(real, real, k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1
    assert same["density"] == pytest.approx(1, abs=0.2)
    far = prdc(real, real + 1000, k=5)
    assert far == {"precision": 0, "recall": 0, "density": 0, "coverage": 0}
    half = prdc(real, mode_a, k=5)  # every fake is real, but only one mode of two
    assert half["precision"] == 1
    assert half["recall"] == half["coverage"] == 0.5


def test_generative_metrics_names_the_space_and_the_sizes():
    space = FeatureSpace("identity", lambda images: images.reshape(len(images), -1))
    rng = np.random.default_rng(0)
    real, fake = rng.random((30, 2, 2, 1)), rng.random((20, 2, 2, 1))
    row = generative_metrics(real, fake, space, subsets=5, subset_size=10)
    assert list(row) == [
        "feature_space", "fid", "kid", "kid_se", "precision", "recall", "density",
        "coverage", "n_real", "n_fake",
    ]  # fmt: skip
    assert (row["feature_space"], row["n_real"], row["n_fake"]) == ("identity", 30, 20)
    json.dumps(row)  # plain Python values
    table = generative_table(real, {"same": real, "other": fake}, space, subsets=5)
    assert table["images"].tolist() == ["same", "other"]
    assert table.loc[0, "fid"] == pytest.approx(0, abs=1e-9)
    with pytest.raises(InputError, match="at least 2"):
        generative_metrics(real, fake[:1], space)


def test_model_space_takes_the_penultimate_layer_or_a_named_one():
    classifier = build_classifier()
    images = np.zeros((3, 32, 32, 3), np.float32)
    space = model_space(classifier, name="classifier")
    assert space.extract(images).shape == (3, 100)
    assert space.name == "classifier, layer 'features' (100 features)"
    named = model_space(classifier, classifier.layers[1].name)  # the first convolution
    assert named.extract(images).shape == (3, 32 * 32 * 32)
    with pytest.raises(InputError, match="no layer"):
        model_space(classifier, "nope")


def test_target_feature_space_is_cached_and_a_broken_cache_retrained(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(20) % 10
    cache = tmp_path / "checkpoints" / "target_features.keras"
    cache.parent.mkdir()
    cache.write_bytes(b"PK truncated")  # an unreadable cache is trained again
    first = target_feature_space(images, labels, seed=0, epochs=1, cache=cache, domain="MNIST-M")
    assert cache.is_file() and "20 labelled MNIST-M images" in first.name
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("retrained"))
    again = target_feature_space(images, labels, seed=0, epochs=1, cache=cache, domain="MNIST-M")
    np.testing.assert_allclose(again.extract(images), first.extract(images), rtol=1e-5)


def test_inception_space_offline_is_an_input_error(monkeypatch):
    def offline(**kwargs):
        raise Exception(  # what keras.utils.get_file raises without a network
            "URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/"
            "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5: None -- "
            "[Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(feature_spaces.keras.applications, "InceptionV3", offline)
    with pytest.raises(InputError, match="domain feature space.*Colab") as err:
        inception_space()
    assert "\n" not in str(err.value)


def test_inception_space_resizes_and_maps_the_stated_pixel_range(monkeypatch):
    def stub(**kwargs):  # no download: a "network" that averages the preprocessed pixels
        shape = kwargs["input_shape"]
        return keras.Sequential([keras.Input(shape), keras.layers.GlobalAveragePooling2D()])

    monkeypatch.setattr(feature_spaces.keras.applications, "InceptionV3", stub)
    space = inception_space(batch_size=2, value_range=(0, 1))
    grey = np.stack([np.zeros((8, 8, 1)), np.full((8, 8, 1), 0.5), np.ones((8, 8, 1))])
    # [0, 1] -> [0, 255] -> preprocess_input -> [-1, 1]; grey becomes three channels
    np.testing.assert_allclose(space.extract(grey), [[-1] * 3, [0] * 3, [1] * 3], atol=1e-5)
    assert "InceptionV3" in space.name


def test_pixelda_metrics_never_use_the_feature_classifiers_images_as_real(tmp_path, monkeypatch):
    n = 100
    numbered = np.zeros((n, 32, 32, 3), np.uint8)
    numbered[:, 0, 0, 0] = np.arange(n)  # every image says which pair it is
    pair = DigitPair("numbered", numbered, np.arange(n) % 10, numbered + 100, np.arange(n) % 10)
    splits = split_pairs(n, seed=0)
    seen = {}

    def spy(name, function):
        def record(images, *args, **kwargs):
            seen[name] = set(images[:, 0, 0, 0].tolist())
            return function(images, *args, **kwargs)

        monkeypatch.setattr(domain_adaptation, name, record)

    spy("target_feature_space", target_feature_space)
    spy("generative_report", generative.generative_report)
    cache = tmp_path / "checkpoints" / "target_features.keras"
    table, _ = translation_metrics(pair, splits, lambda x: x, "copy", 0, quick=True, cache=cache)
    labelled, real = seen["target_feature_space"], seen["generative_report"]
    assert labelled and real and not labelled & real
    assert {i + 100 for i in splits.validation} <= labelled
    assert real <= {i + 100 for i in splits.target_test}
    assert table["images"].tolist() == [
        "MNIST-M, other real images (reference)", "MNIST, not adapted", "copy translations of MNIST"
    ]  # fmt: skip
    assert table["feature_space"].str.contains("labelled MNIST-M images").all()
    assert cache.is_file()


def test_endovae_metrics_in_the_encoders_penultimate_layer():
    model = tiny_vae()
    normal = {"train": random_images(12, seed=1), "validation": random_images(6, seed=2)}
    generated = model.sample(9, seed=0)
    table, sections = sample_metrics(model.encoder, normal, generated, normal["validation"], seed=0)
    assert table["n_real"].tolist() == table["n_fake"].tolist() == [6, 6, 6]
    assert table.loc[2, "fid"] == pytest.approx(0, abs=1e-6)  # "reconstructions" = the frames
    # the dense layer before the latent heads (named dense or dense_<n>)
    assert re.search(r"EndoVAE encoder, layer 'dense(_\d+)?' \(16 features\)", sections[0][1])
