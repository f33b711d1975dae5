"""SSIM / PSNR against scikit-image and known values; AUROC / AUPRC with known answers."""

import numpy as np
from skimage.metrics import structural_similarity

from evaluation.anomaly import vae_scores
from evaluation.metrics import auprc, auroc, psnr, ssim
from tests.endovae_helpers import random_images, tiny_vae


def test_ssim_and_psnr_on_known_images():
    images = random_images(3)
    assert np.allclose(ssim(images, images), 1.0)
    shifted = np.clip(images + 0.1, 0, 1)
    expected = [
        structural_similarity(a, b, data_range=1, channel_axis=-1)
        for a, b in zip(images, shifted, strict=True)
    ]
    np.testing.assert_allclose(ssim(images, shifted), expected)
    grey = np.zeros((2, 8, 8, 3), np.float32)
    np.testing.assert_allclose(psnr(grey, grey + 0.1), 20.0, rtol=1e-5)  # MSE 0.01 -> 20 dB


def test_auroc_and_auprc_with_known_answers():
    labels = np.array([0, 0, 1, 1])
    assert auroc(labels, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auroc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert auroc(labels, np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert auprc(labels, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    np.testing.assert_allclose(auprc(labels, np.array([0.1, 0.4, 0.35, 0.8])), (1 + 2 / 3) / 2)


def test_vae_scores_match_test_step():
    model = tiny_vae()
    images = random_images(5)
    scores = vae_scores(model, images, batch_size=2)
    assert scores["reconstructions"].shape == images.shape
    logs = model.evaluate(images, verbose=0, return_dict=True)
    np.testing.assert_allclose(scores["neg_elbo"].mean(), logs["total_loss"], rtol=1e-5)
    expected = ((scores["reconstructions"] - images) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(scores["recon_error"], expected)
