"""The 300-W challenge winners' official results (introduced in notebook 05_challenge_comparison).

The 300-W organisers published the cumulative error distributions (CED) of the challenge
winners on the 600-image 300-W test set (300 indoor + 300 outdoor), 68 points, error normalised
by the outer-eye-corner distance (Sagonas et al., "300 faces in-the-wild challenge: database and
results", Image and Vision Computing 47 (2016) 3-18). This module reads those curves, recomputes
AUC@alpha and failure rate@alpha from them with :mod:`fkd_utils.metrics` (the same trapezoid rule
on the same 0.0005 grid as our own numbers), and draws them next to ours.

Where to get the files
----------------------
The official files are not part of this project (their curves, 701 numbers per method and
subset, are shipped as published results in one small ``.npz``; see below). Get them from the
public MenpoBenchmark repository (https://github.com/jiankangdeng/MenpoBenchmark, folder
``Evaluation/300W``), which redistributes the organisers' results, or from the 300-W organisers'
result release (https://ibug.doc.ic.ac.uk/resources/300-W/). Put them in one folder and pass
that folder to :func:`load_curves`. On the developers' machines they live at
``../shared/data/300w-challenge-results`` (see :func:`default_results_dir`); fresh machines have
none: there :func:`shipped_curves` reads the same curves from the small data file shipped with
the package (``fkd_utils/resources/challenge_300w_ced.npz``: 701 thresholds x 4 methods x
all / indoor / outdoor, 68 points, with the citation; written from the official files by
:func:`export_curves`), and :data:`PUBLISHED` / :func:`published_table` give the summary
figures as cited facts.

File format
-----------
``300W_test_all.mat``, ``300W_test_indoor.mat``, ``300W_test_outdoor.mat`` (MATLAB v5, read
with :func:`scipy.io.loadmat`), each holding

* ``x``: (701, 1) error thresholds 0, 0.0005, ..., 0.35;
* ``y``: (701, k) fraction of images with error <= x, one column per method;
* ``methods``: (1, k) cell array of method names in column order
  ('Fan et al.', 'Zhou et al.', 'Yan et al.', 'Deng et al.').

The files hold 68-point curves only; there are no 51-point curves in them.
"""
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io

from . import metrics

SUBSETS = ("all", "indoor", "outdoor")
#: Point sets whose curves the official files hold.
POINTS_IN_FILES = (68,)
_FILE_PATTERN = "300W_test_{subset}.mat"
_LINESTYLES = ("--", "-.", ":", (0, (6, 2, 1, 2, 1, 2)), (0, (8, 3)), (0, (2, 4)))
_TOL = 1e-9
#: The winners' curves shipped with the package (published numbers, with their citation).
SHIPPED_CURVES = "challenge_300w_ced.npz"

PUBLISHED_SOURCE = ("recomputed from the official 300-W result curves (Sagonas et al. 2016), "
                    "trapezoid rule, 0.0005 grid")
SAGONAS_2016 = ("C. Sagonas, E. Antonakos, G. Tzimiropoulos, S. Zafeiriou, M. Pantic, "
                "\"300 faces in-the-wild challenge: database and results\", "
                "Image Vis. Comput. 47 (2016) 3-18")

#: The winners' summary figures (68 points, all 600 test images, in percent), as cited facts:
#: ``{method: {"citation", "edition", "points", "subset", "source",
#: "auc_pct": {alpha: value}, "fr_pct": {alpha: value}}}``.
PUBLISHED = {
    "Yan et al.": {
        "citation": "J. Yan, Z. Lei, D. Yi, S. Li, \"Learn to combine multiple hypotheses for "
                    "accurate face alignment\", ICCV Workshops 2013, pp. 392-396",
        "edition": 2013,
        "auc_pct": {0.08: 35.20, 0.10: 46.10},
        "fr_pct": {0.08: 12.67, 0.10: 7.83},
    },
    "Zhou et al.": {
        "citation": "E. Zhou, H. Fan, Z. Cao, Y. Jiang, Q. Yin, \"Extensive facial landmark "
                    "localization with coarse-to-fine convolutional network cascade\", "
                    "ICCV Workshops 2013, pp. 386-391",
        "edition": 2013,
        "auc_pct": {0.08: 32.96, 0.10: 44.47},
        "fr_pct": {0.08: 13.00, 0.10: 7.00},
    },
    "Deng et al.": {
        "citation": "J. Deng, Q. Liu, J. Yang, D. Tao, \"M3 CSR: multi-view, multi-scale and "
                    "multi-component cascade shape regression\", "
                    "Image Vis. Comput. 47 (2016) 19-26",
        "edition": 2015,
        "auc_pct": {0.08: 36.34, 0.10: 47.52},
        "fr_pct": {0.08: 11.83, 0.10: 5.50},
    },
    "Fan et al.": {
        "citation": "H. Fan, E. Zhou, \"Approaching human level facial landmark localization "
                    "by deep learning\", Image Vis. Comput. 47 (2016) 27-35",
        "edition": 2015,
        "auc_pct": {0.08: 38.84, 0.10: 48.02},
        "fr_pct": {0.08: 16.33, 0.10: 14.83},
    },
}
for _entry in PUBLISHED.values():
    _entry.update(points=68, subset="all", source=PUBLISHED_SOURCE)
del _entry


class ChallengeResultsError(ValueError):
    """A challenge result folder or file is missing or malformed."""


def default_results_dir():
    """``<project root>/../shared/data/300w-challenge-results`` if it exists, else None."""
    root = Path(__file__).resolve().parent.parent
    candidate = (root.parent / "shared" / "data" / "300w-challenge-results").resolve()
    return candidate if candidate.is_dir() else None


def result_file(results_dir, subset):
    """Path of the result file of one subset."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    return Path(results_dir) / _FILE_PATTERN.format(subset=subset)


def available(results_dir):
    """The ``(subset, points)`` pairs whose curves exist in ``results_dir`` (files present).

    Only 68-point curves can appear: the official files hold no 51-point curves.
    """
    if results_dir is None or not Path(results_dir).is_dir():
        return []
    return [(subset, points) for subset in SUBSETS for points in POINTS_IN_FILES
            if result_file(results_dir, subset).is_file()]


def _check_dir(results_dir):
    if results_dir is None:
        raise ChallengeResultsError(
            "no challenge results folder given (none found at ../shared/data/"
            "300w-challenge-results); get the files from MenpoBenchmark's Evaluation/300W folder")
    if not Path(results_dir).is_dir():
        raise ChallengeResultsError(f"challenge results folder not found: {results_dir}")


def _method_names(cell):
    cell = np.asarray(cell)
    if cell.dtype == object:
        return [str(np.asarray(item).ravel()[0]).strip() for item in cell.ravel()]
    if cell.dtype.kind == "U":  # a char matrix, one name per row
        return [str(row).strip() for row in np.atleast_1d(cell).ravel()]
    raise ChallengeResultsError(f"methods has unexpected type {cell.dtype}")


def _read_mat(path):
    if not path.is_file():
        raise ChallengeResultsError(f"{path}: file not found")
    try:
        content = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises several types for unreadable files
        raise ChallengeResultsError(f"{path}: cannot read as a MATLAB file ({exc})") from exc
    missing = [key for key in ("x", "y", "methods") if key not in content]
    if missing:
        raise ChallengeResultsError(f"{path}: lacks variable(s) {', '.join(missing)}")
    return content


def _validate(path, x, y, methods):
    if y.shape[1] != len(methods):
        raise ChallengeResultsError(
            f"{path}: y has {y.shape[1]} columns but there are {len(methods)} methods")
    if x.size != y.shape[0]:
        raise ChallengeResultsError(
            f"{path}: x has {x.size} thresholds but y has {y.shape[0]} rows")
    if not np.all(np.diff(x) > 0):
        raise ChallengeResultsError(f"{path}: x is not strictly increasing")
    if not np.all(np.isfinite(y)) or y.min() < -_TOL or y.max() > 1 + _TOL:
        raise ChallengeResultsError(f"{path}: y has values outside [0, 1]")
    if np.any(np.diff(y, axis=0) < -_TOL):
        raise ChallengeResultsError(f"{path}: y is not monotone non-decreasing")


def read_result_file(path):
    """One result file as ``{method: (x, y)}`` (1-D arrays), validated."""
    path = Path(path)
    content = _read_mat(path)
    x = np.asarray(content["x"], dtype=np.float64).ravel()
    y = np.asarray(content["y"], dtype=np.float64)
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    methods = _method_names(content["methods"])
    _validate(path, x, y, methods)
    return {name: (x.copy(), y[:, j].copy()) for j, name in enumerate(methods)}


def load_curves(results_dir, points=68, subsets=SUBSETS):
    """The winners' CEDs: ``{subset: {method: (x, y)}}``, y a fraction in [0, 1].

    Raises :class:`ChallengeResultsError` (a ``ValueError``) naming the folder or file for a
    missing folder or file and for malformed content. ``points=51`` is refused: the official
    files hold 68-point curves only (see :func:`available`).
    """
    if points not in POINTS_IN_FILES:
        raise ChallengeResultsError(
            f"{points}-point curves are not in the 300-W challenge result files "
            f"(they hold {', '.join(map(str, POINTS_IN_FILES))}-point curves only)")
    _check_dir(results_dir)
    return {subset: read_result_file(result_file(results_dir, subset)) for subset in subsets}


def export_curves(results_dir, out_path):
    """Write the official files' curves (all subsets, 68 points) to one compressed ``.npz``
    with the citation: how the package's :data:`SHIPPED_CURVES` file was made."""
    curves = load_curves(results_dir)
    methods = list(curves["all"])
    x = curves["all"][methods[0]][0]
    arrays = {"x": x, "methods": np.array(methods), "citation": np.array(SAGONAS_2016),
              "source": np.array("official 300-W challenge result files "
                                 "(300W_test_{all,indoor,outdoor}.mat, MenpoBenchmark Evaluation/300W)")}
    for subset, by_method in curves.items():
        if list(by_method) != methods or any(not np.array_equal(by_method[m][0], x) for m in methods):
            raise ChallengeResultsError(f"{results_dir}: subsets disagree on methods or thresholds")
        arrays[f"y_{subset}"] = np.column_stack([by_method[m][1] for m in methods])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    return out_path


def _read_shipped():
    """The shipped ``.npz`` as a dict of arrays (read through importlib.resources, so an
    installed package finds it too)."""
    with resources.as_file(resources.files("fkd_utils") / "resources" / SHIPPED_CURVES) as file:
        with np.load(file) as npz:
            return {key: npz[key] for key in npz.files}


def shipped_curves():
    """The winners' CEDs shipped with the package, as :func:`load_curves` returns them
    (``{subset: {method: (x, y)}}``, 68 points), so Fig. 7 draws them on a fresh machine."""
    content = _read_shipped()
    x, methods = content["x"], [str(m) for m in content["methods"]]
    curves = {}
    for subset in SUBSETS:
        y = content[f"y_{subset}"]
        _validate(f"{SHIPPED_CURVES} ({subset})", x, y, methods)
        curves[subset] = {m: (x.copy(), y[:, j].copy()) for j, m in enumerate(methods)}
    return curves


def shipped_citation():
    """Where the shipped curves come from (the organisers' paper)."""
    return str(_read_shipped()["citation"])


def curves_for_figure(results_dir=None):
    """The winners' curves for Fig. 7 and where they came from: the official files in
    ``results_dir`` (or ``../shared/data/300w-challenge-results``) when present, otherwise
    the copy shipped with the package. Returns ``(curves, source)``."""
    results_dir = results_dir or default_results_dir()
    if results_dir:
        return load_curves(results_dir), f"official result files in {results_dir}"
    return shipped_curves(), f"shipped with fkd ({SHIPPED_CURVES}; {SAGONAS_2016})"


def summarize_curves(curves, alpha=metrics.DEFAULT_ALPHA):
    """AUC@alpha and FR@alpha (fractions in [0, 1]) of every curve, one row per method/subset."""
    rows = []
    for subset, by_method in curves.items():
        for method, (x, y) in by_method.items():
            rows.append({"method": method, "subset": subset, "points": 68,
                         "auc": metrics.auc_from_curve(x, y, alpha),
                         "fr": metrics.failure_rate_from_curve(x, y, alpha),
                         "source": "curve"})
    return rows


def _alpha_key(alpha):
    key = round(float(alpha), 4)
    if key not in PUBLISHED["Fan et al."]["auc_pct"]:
        raise ValueError(f"published figures exist for alpha 0.08 and 0.10 only, got {alpha}")
    return key


def published_table(alpha=metrics.DEFAULT_ALPHA):
    """The cited summary figures as rows like :func:`summarize_curves`.

    Fractions in [0, 1], ``"source": "published"``; ``alpha`` must be 0.08 or 0.10.
    """
    key = _alpha_key(alpha)
    return [{"method": method, "subset": entry["subset"], "points": entry["points"],
             "auc": entry["auc_pct"][key] / 100, "fr": entry["fr_pct"][key] / 100,
             "source": "published"}
            for method, entry in PUBLISHED.items()]


def compare_with_published(curves, alpha=metrics.DEFAULT_ALPHA, tol=0.003):
    """Check our integration of the curves against the cited figures (all 600 images).

    ``curves`` is :func:`load_curves` output (its "all" subset is used) or one subset's
    ``{method: (x, y)}``. Returns ``(method, ours_auc, published_auc, ours_fr, published_fr, ok)``
    tuples (fractions), ``ok`` when both differences are within ``tol``.
    """
    by_method = curves["all"] if "all" in curves else curves
    published = {row["method"]: row for row in published_table(alpha)}
    result = []
    for method, (x, y) in by_method.items():
        if method not in published:
            continue
        ours_auc = metrics.auc_from_curve(x, y, alpha)
        ours_fr = metrics.failure_rate_from_curve(x, y, alpha)
        ref = published[method]
        ok = abs(ours_auc - ref["auc"]) <= tol and abs(ours_fr - ref["fr"]) <= tol
        result.append((method, ours_auc, ref["auc"], ours_fr, ref["fr"], ok))
    if not result:
        raise ValueError(f"none of the curves' methods has published figures: {list(by_method)}")
    return result


def plot_challenge_ced(ax, curves_for_subset, xmax=metrics.DEFAULT_ALPHA):
    """Draw the winners' CEDs (``{method: (x, y)}``) up to ``xmax``, one dash style each.

    Returns the list of ``Line2D``; each line is labelled with the method's name.
    """
    from .plots import colour  # the winners' fixed greys, apart from our approaches' colours
    lines = []
    for i, (method, (x, y)) in enumerate(curves_for_subset.items()):
        x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
        keep = x <= xmax + 1e-12
        (line,) = ax.plot(x[keep], y[keep], linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                          linewidth=1.5, label=method, color=colour(method))
        lines.append(line)
    ax.set_xlim(0, xmax)
    return lines
