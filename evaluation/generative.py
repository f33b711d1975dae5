"""Generative-model metrics: FID, KID, precision, recall, density and coverage.

All of them compare two sets of images in a `FeatureSpace` (`evaluation.feature_spaces`).
A number is comparable only with numbers from the same space and the same real set, so
every table and report names its space.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from evaluation.feature_spaces import FeatureSpace
from evaluation.reports import markdown_table
from preprocessing.files import InputError

# ---------------------------------------------------------------- metrics of feature sets


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N x D each).

    ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), where Tr (S1 S2)^(1/2) is computed as
    Tr (S1^(1/2) S2 S1^(1/2))^(1/2) from symmetric eigen-decompositions: real, and stable
    for singular covariances (fewer images than features).
    """
    (mu1, s1), (mu2, s2) = _gaussian(real), _gaussian(fake)
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    return float(max(distance, 0.0))


def kid(
    real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel inception distance: (mean, standard error) of the unbiased MMD^2 with the
    kernel k(x, y) = (x.y / D + 1)^3 over `subsets` random subsets of both sets.

    The subset size is capped at half the smaller set (at least 2), so that subsets differ.
    The standard error scales the spread of the subset estimates, sd * sqrt(m / n), as the
    estimator's variance falls like 1/m with the subset size m (n: the smaller set size).
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    n = min(len(real), len(fake))
    m = min(subset_size, max(2, n // 2))
    rng = np.random.default_rng(seed)
    estimates = np.array(
        [
            _mmd2(
                real[rng.choice(len(real), m, replace=False)],
                fake[rng.choice(len(fake), m, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    whole = m == len(real) == len(fake)  # every subset is both whole sets: no spread to use
    se = estimates.std(ddof=1) * math.sqrt(m / n) if subsets > 1 and not whole else math.nan
    return float(estimates.mean()), float(se)


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = 1024) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with k-NN balls.

    A real (fake) point's ball reaches its k-th nearest real (fake) neighbour. Precision:
    share of fakes inside some real ball; recall: share of reals inside some fake ball;
    density: mean number of real balls holding a fake, / k; coverage: share of real balls
    holding a fake. `k` is capped at the set size - 1.
    """
    real, fake = _features(real, "real"), _features(fake, "fake")
    k = min(k, len(real) - 1, len(fake) - 1)
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    balls = np.zeros(len(fake))  # real balls holding each fake
    recalled = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    for start in range(0, len(fake), chunk):
        part = slice(start, start + chunk)
        distances = pairwise_distances(fake[part], real)  # fakes x reals
        balls[part] = (distances <= real_radii).sum(axis=1)
        recalled |= (distances <= fake_radii[part, None]).any(axis=0)
        nearest_fake = np.minimum(nearest_fake, distances.min(axis=0))
    return {
        "precision": float(np.mean(balls > 0)),
        "recall": float(np.mean(recalled)),
        "density": float(balls.sum() / (k * len(fake))),
        "coverage": float(np.mean(nearest_fake <= real_radii)),
    }


def _features(x: np.ndarray, which: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise InputError(f"{which} features of shape {x.shape}: need N x D with at least 2 rows")
    return x


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _features(x, "feature")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix (tiny negative
    eigenvalues from rounding count as 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size sets with the cubic polynomial kernel."""
    m, d = x.shape

    def kernel(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy = kernel(x, x), kernel(y, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kernel(x, y).mean())


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each point to its k-th nearest neighbour in the same set (itself not
    counted)."""
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return distances[:, k]


# ---------------------------------------------------------------- image sets


def generative_metrics(
    real_images: np.ndarray,
    fake_images: np.ndarray,
    space: FeatureSpace,
    seed: int = 0,
    subsets: int = 100,
    subset_size: int = 1000,
    k: int = 5,
) -> dict:
    """FID, KID (+ standard error) and PRDC of two image sets in `space`, with its name
    and the set sizes: keys feature_space, fid, kid, kid_se, precision, recall, density,
    coverage, n_real, n_fake."""
    real, fake = space.extract(real_images), space.extract(fake_images)
    return _metrics(real, fake, space, seed, subsets, subset_size, k)


def generative_table(
    real_images: np.ndarray,
    fakes: dict[str, np.ndarray],
    space: FeatureSpace,
    seed: int = 0,
    subsets: int = 100,
    subset_size: int = 1000,
    k: int = 5,
) -> pd.DataFrame:
    """`generative_metrics` of several image sets against one real set (its features are
    extracted once): one row per set, named in the column `images`."""
    real = space.extract(real_images)
    return pd.DataFrame(
        [
            {
                "images": name,
                **_metrics(real, space.extract(images), space, seed, subsets, subset_size, k),
            }
            for name, images in fakes.items()
        ]
    )


def _metrics(
    real: np.ndarray,
    fake: np.ndarray,
    space: FeatureSpace,
    seed: int,
    subsets: int,
    subset_size: int,
    k: int,
) -> dict:
    mean, se = kid(real, fake, subsets, subset_size, seed)
    return {
        "feature_space": space.name,
        "fid": fid(real, fake),
        "kid": mean,
        "kid_se": se,
        **prdc(real, fake, k),
        "n_real": len(real),
        "n_fake": len(fake),
    }


def generative_report(
    real_images: np.ndarray,
    fakes: dict[str, np.ndarray],
    spaces: dict[str, FeatureSpace],
    real: str,
    seed: int = 0,
    subsets: int = 100,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`generative_table` in each of `spaces` (short label -> space): all rows in one frame,
    and one report section per space, naming the space and the real set (`real`)."""
    tables, sections = [], []
    for label, space in spaces.items():
        table = generative_table(real_images, fakes, space, seed, subsets)
        body = (
            f"Feature space: {space.name}. Real images: {real}. FID and KID: lower is closer "
            "to the real images; precision and density: realism; recall and coverage: "
            "diversity. Numbers compare only within this table (same feature space, same "
            "real set).\n\n" + markdown_table(_significant(table.drop(columns="feature_space")))
        )
        tables.append(table)
        sections.append((f"Generative metrics in {label} features", body))
    return pd.concat(tables, ignore_index=True), sections


def _significant(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Floats as text with `digits` significant digits: the scale of the metrics depends on
    the feature space (KID can be 1e-6 in one and 1e4 in another)."""
    return table.apply(
        lambda column: (
            column.map(lambda v: f"{v:.{digits}g}") if column.dtype.kind == "f" else column
        )
    )
