"""The 300-W error measures (introduced in notebook 02, used by every later notebook).

* Per-image error: mean point-to-point Euclidean distance divided by the distance between
  the ground truth's outer eye corners (points 36 and 45), as in Sagonas et al. (2016) and the
  paper's Eq. (1).
* CED: fraction of images with error <= t, on a threshold grid.
* AUC@alpha: area under the CED from 0 to alpha divided by alpha, integrated with the
  trapezoid rule on the grid ``0, 0.0005, ..., alpha`` (the official challenge grid), so our
  numbers and the winners' curves are integrated the same way.
* Failure rate@alpha: fraction of images with error > alpha.
* A shape with any NaN or infinite point (a model that diverged, a file with holes) is a
  failure with an infinite error: it counts in the failure rate at every alpha, never reaches
  the CED, and makes the mean NME infinite (``nme_finite`` then gives the mean over the other
  images, ``n_nonfinite`` how many there are). It never silently counts as a success.
"""
import numpy as np

from .markup import OUTER_EYE_CORNERS, PARTS, POINTS_51

#: Step of the official 300-W CED grid.
GRID_STEP = 0.0005
DEFAULT_ALPHA = 0.08


def _check_shapes(pred, gt):
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1:] != (68, 2):
        raise ValueError(f"pred and gt must both be (N, 68, 2); got {pred.shape} and {gt.shape}")
    return pred, gt


def interocular(gt):
    """Outer-eye-corner distance of each ground-truth shape, (N,)."""
    gt = np.asarray(gt, dtype=np.float64)
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)


def point_errors(pred, gt):
    """Per-point distances divided by the outer-eye-corner distance, (N, 68)."""
    pred, gt = _check_shapes(pred, gt)
    norm = interocular(gt)
    if not np.all(np.isfinite(gt)):
        raise ValueError("a ground-truth shape has NaN or infinite points")
    if np.any(norm <= 0):
        raise ValueError("a ground-truth shape has coinciding outer eye corners")
    return np.linalg.norm(pred - gt, axis=-1) / norm[:, None]


def nme(pred, gt, points=68):
    """Per-image normalised mean error, (N,). ``points=51`` drops the jaw (0-16)."""
    if points not in (68, 51):
        raise ValueError(f"points must be 68 or 51, got {points}")
    errors = point_errors(pred, gt)
    if points == 51:
        errors = errors[:, list(POINTS_51)]
    per_image = errors.mean(axis=1)
    per_image[~np.isfinite(per_image)] = np.inf   # see the module's note on non-finite shapes
    return per_image


def threshold_grid(alpha=DEFAULT_ALPHA, step=GRID_STEP):
    """The CED grid ``0, step, ..., alpha`` (inclusive)."""
    return np.linspace(0.0, alpha, int(round(alpha / step)) + 1)


def ced(errors, thresholds=None):
    """Cumulative error distribution: fraction of errors <= each threshold."""
    errors = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    thresholds = threshold_grid() if thresholds is None else np.asarray(thresholds, float)
    if errors.size == 0:
        raise ValueError("no errors given")
    return np.searchsorted(errors, thresholds, side="right") / errors.size


def auc_from_curve(thresholds, fractions, alpha=DEFAULT_ALPHA):
    """AUC@alpha of a CED given as a curve (e.g. a challenge result file), in [0, 1]."""
    x, y = np.asarray(thresholds, float).ravel(), np.asarray(fractions, float).ravel()
    keep = x <= alpha + 1e-12
    return float(np.trapezoid(y[keep], x[keep]) / alpha)


def auc(errors, alpha=DEFAULT_ALPHA, step=GRID_STEP):
    """Area under the CED up to alpha, divided by alpha (trapezoid, ``step`` grid)."""
    grid = threshold_grid(alpha, step)
    return auc_from_curve(grid, ced(errors, grid), alpha)


def failure_rate(errors, alpha=DEFAULT_ALPHA):
    """Fraction of images whose error exceeds alpha."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        raise ValueError("no errors given")
    return float(np.mean(errors > alpha))


def failure_rate_from_curve(thresholds, fractions, alpha=DEFAULT_ALPHA):
    """Failure rate@alpha read off a CED curve: 1 - CED(alpha)."""
    x, y = np.asarray(thresholds, float).ravel(), np.asarray(fractions, float).ravel()
    return float(1.0 - np.interp(alpha, x, y))


def summary(errors, alpha=DEFAULT_ALPHA):
    """Mean NME, AUC@alpha and failure rate@alpha of a set of per-image errors."""
    errors = np.asarray(errors, dtype=np.float64)
    finite = np.isfinite(errors)
    return {"n": int(errors.size), "nme": float(errors.mean()),
            "auc": auc(errors, alpha), "fr": failure_rate(errors, alpha),
            "nme_finite": float(errors[finite].mean()) if finite.any() else float("inf"),
            "n_nonfinite": int((~finite).sum())}


def evaluate(pred, gt, subsets=None, alpha=DEFAULT_ALPHA):
    """Summaries for 68 and 51 points, for all images and for each subset.

    Returns ``{"68": {"all": {...}, "<subset>": {...}}, "51": {...}}``.
    """
    subsets = None if subsets is None else np.asarray(subsets)
    n = np.shape(pred)[0] if np.ndim(pred) else 0
    if subsets is not None and subsets.shape != (n,):
        raise ValueError(f"subsets must give one label per image ({n}); got shape {subsets.shape}")
    report = {}
    for points in (68, 51):
        errors = nme(pred, gt, points)
        table = {"all": summary(errors, alpha)}
        if subsets is not None:
            for name in sorted(set(subsets.tolist())):
                table[name] = summary(errors[subsets == name], alpha)
        report[str(points)] = table
    return report


def part_errors(pred, gt):
    """Per-image mean normalised error of each part (jaw, brows, nose, eyes, mouth)."""
    errors = point_errors(pred, gt)
    return {name: errors[:, list(idx)].mean(axis=1) for name, idx in PARTS.items()}
