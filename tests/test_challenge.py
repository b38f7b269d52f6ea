"""Tests of fkd_utils.challenge (the 300-W challenge winners' result curves)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.io  # noqa: E402

from fkd_utils import challenge, metrics  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT / ".." / "shared" / "data" / "300w-challenge-results"

# AUC@0.08 / FR@0.08 in %, 68 points, all 600 images (shared README, rounded to 0.1).
EXPECTED_ALL_008 = {"Yan et al.": (35.2, 12.7), "Zhou et al.": (33.0, 13.0),
                    "Deng et al.": (36.3, 11.8), "Fan et al.": (38.8, 16.3)}


@pytest.fixture(scope="module")
def official():
    if not SHARED.is_dir():
        pytest.skip(f"official 300-W challenge curves not present at {SHARED.resolve()}")
    return challenge.load_curves(SHARED)


# ---------------------------------------------------------------- synthetic files

def _errors(seed, n, scale):
    """Errors halfway between grid points, so every CED grid agrees on them exactly."""
    k = np.random.default_rng(seed).integers(0, int(scale / metrics.GRID_STEP), size=n)
    return (k + 0.5) * metrics.GRID_STEP


SYNTHETIC = {"Method A": _errors(0, 40, 0.12), "Method B": _errors(1, 25, 0.40)}


def _cell(names):
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = names
    return cell


def _write(path, x=None, y=None, methods=None, drop=()):
    x = metrics.threshold_grid(0.35) if x is None else x
    if y is None:
        y = np.column_stack([metrics.ced(e, x) for e in SYNTHETIC.values()])
    methods = list(SYNTHETIC) if methods is None else methods
    content = {"x": x.reshape(-1, 1), "y": y, "methods": _cell(methods)}
    scipy.io.savemat(str(path), {k: v for k, v in content.items() if k not in drop})
    return path


def _write_all(folder, **kwargs):
    for subset in challenge.SUBSETS:
        _write(folder / f"300W_test_{subset}.mat", **kwargs)
    return folder


def test_synthetic_curves_give_metrics_auc_and_fr(tmp_path):
    curves = challenge.load_curves(_write_all(tmp_path))
    assert set(curves) == set(challenge.SUBSETS)
    assert list(curves["all"]) == list(SYNTHETIC)
    for alpha in (0.08, 0.10):
        rows = challenge.summarize_curves(curves, alpha)
        assert len(rows) == 3 * len(SYNTHETIC)
        for row in rows:
            errors = SYNTHETIC[row["method"]]
            assert row["auc"] == pytest.approx(metrics.auc(errors, alpha), abs=1e-9)
            assert row["fr"] == pytest.approx(metrics.failure_rate(errors, alpha), abs=1e-12)
            assert row["points"] == 68 and row["source"] == "curve"
            assert 0 <= row["auc"] <= 1 and 0 <= row["fr"] <= 1


def test_available_lists_68_point_subsets(tmp_path):
    assert challenge.available(tmp_path / "nope") == []
    assert challenge.available(None) == []
    _write(tmp_path / "300W_test_indoor.mat")
    assert challenge.available(tmp_path) == [("indoor", 68)]


def test_51_points_is_a_clear_error(tmp_path):
    with pytest.raises(challenge.ChallengeResultsError, match="51-point curves are not in"):
        challenge.load_curves(_write_all(tmp_path), points=51)


def test_missing_dir_is_named(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="no_such_folder"):
        challenge.load_curves(missing)
    with pytest.raises(ValueError, match="no challenge results folder"):
        challenge.load_curves(None)


def test_missing_file_is_named(tmp_path):
    _write(tmp_path / "300W_test_all.mat")
    with pytest.raises(ValueError, match=r"300W_test_indoor\.mat: file not found"):
        challenge.load_curves(tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"drop": ("x",)}, "lacks variable.*x"),
    ({"methods": ["only one"]}, "2 columns but there are 1 methods"),
    ({"x": metrics.threshold_grid(0.30)}, "x has 601 thresholds but y has 701 rows"),
    ({"y": np.column_stack([np.linspace(1, 0, 701)] * 2)}, "not monotone"),
    ({"y": np.column_stack([np.linspace(0, 100, 701)] * 2)}, r"outside \[0, 1\]"),
])
def test_bad_files_raise_naming_the_file(tmp_path, kwargs, message):
    if "x" in kwargs:  # y must keep its own 701 rows for the length mismatch
        kwargs["y"] = np.column_stack([metrics.ced(e, metrics.threshold_grid(0.35))
                                       for e in SYNTHETIC.values()])
    _write_all(tmp_path, **kwargs)
    with pytest.raises(challenge.ChallengeResultsError,
                       match=rf"300W_test_all\.mat: .*{message}"):
        challenge.load_curves(tmp_path)


# ---------------------------------------------------------------- published figures

def test_published_table_has_the_documented_numbers():
    expected = {0.08: {"Fan et al.": (38.84, 16.33), "Zhou et al.": (32.96, 13.00),
                       "Yan et al.": (35.20, 12.67), "Deng et al.": (36.34, 11.83)},
                0.10: {"Fan et al.": (48.02, 14.83), "Zhou et al.": (44.47, 7.00),
                       "Yan et al.": (46.10, 7.83), "Deng et al.": (47.52, 5.50)}}
    for alpha, table in expected.items():
        rows = challenge.published_table(alpha)
        assert {row["method"] for row in rows} == set(table)
        for row in rows:
            auc_pct, fr_pct = table[row["method"]]
            assert row["auc"] == pytest.approx(auc_pct / 100, abs=1e-12)
            assert row["fr"] == pytest.approx(fr_pct / 100, abs=1e-12)
            assert row["source"] == "published" and row["points"] == 68
    for entry in challenge.PUBLISHED.values():
        assert entry["edition"] in (2013, 2015) and entry["citation"]
        assert "Sagonas" in entry["source"]
    with pytest.raises(ValueError, match="0.08 and 0.10"):
        challenge.published_table(0.05)


# ---------------------------------------------------------------- plotting

def test_plot_challenge_ced_draws_clipped_curves(tmp_path):
    curves = challenge.load_curves(_write_all(tmp_path))["all"]
    curves = {**curves, "Method C": curves["Method A"], "Method D": curves["Method B"]}
    fig, ax = plt.subplots()
    try:
        lines = challenge.plot_challenge_ced(ax, curves, xmax=0.08)
        assert len(lines) == 4
        assert all(line.get_linestyle() not in ("-", "None") for line in lines)  # dashed
        assert len({repr(style) for style in challenge._LINESTYLES[:4]}) == 4  # distinct
        for line, (method, (x, y)) in zip(lines, curves.items()):
            keep = x <= 0.08 + 1e-12
            assert line.get_label() == method
            np.testing.assert_array_equal(line.get_xdata(), x[keep])
            np.testing.assert_array_equal(line.get_ydata(), y[keep])
            assert line.get_xdata()[-1] == pytest.approx(0.08)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- official files

def test_official_all_matches_published(official):
    rows = {row["method"]: row for row in challenge.summarize_curves({"all": official["all"]})}
    assert set(rows) == set(EXPECTED_ALL_008)
    for method, (auc_pct, fr_pct) in EXPECTED_ALL_008.items():
        assert 100 * rows[method]["auc"] == pytest.approx(auc_pct, abs=0.3)
        assert 100 * rows[method]["fr"] == pytest.approx(fr_pct, abs=0.3)
    for alpha in (0.08, 0.10):
        assert all(ok for *_, ok in challenge.compare_with_published(official, alpha))


def test_official_indoor_and_outdoor_load(official):
    for subset in ("indoor", "outdoor"):
        assert list(official[subset]) == ["Fan et al.", "Zhou et al.", "Yan et al.", "Deng et al."]
        for x, y in official[subset].values():
            assert x.shape == y.shape == (701,)
    assert challenge.available(SHARED) == [(s, 68) for s in challenge.SUBSETS]
    assert challenge.default_results_dir() == SHARED.resolve()


# ---------------------------------------------------------------- shipped curves

def test_shipped_curves_give_the_published_figures():
    # no ../shared needed: the package's own copy draws Fig. 7 on a fresh machine
    curves = challenge.shipped_curves()
    assert set(curves) == set(challenge.SUBSETS)
    for subset in challenge.SUBSETS:
        assert list(curves[subset]) == ["Fan et al.", "Zhou et al.", "Yan et al.", "Deng et al."]
        for x, y in curves[subset].values():
            assert x.shape == y.shape == (701,) and x[-1] == pytest.approx(0.35)
    for alpha in (0.08, 0.10):
        assert all(ok for *_, ok in challenge.compare_with_published(curves, alpha))
    assert "Sagonas" in challenge.shipped_citation()


def test_shipped_curves_equal_the_official_files(official):
    shipped = challenge.shipped_curves()
    for subset, by_method in official.items():
        for method, (x, y) in by_method.items():
            np.testing.assert_array_equal(shipped[subset][method][0], x)
            np.testing.assert_array_equal(shipped[subset][method][1], y)


def test_export_round_trips_and_figure_prefers_given_files(tmp_path):
    (tmp_path / "official").mkdir()
    folder = _write_all(tmp_path / "official")
    out = challenge.export_curves(folder, tmp_path / "curves.npz")
    with np.load(out) as npz:
        assert npz["y_all"].shape == (701, len(SYNTHETIC)) and "Sagonas" in str(npz["citation"])
    curves, source = challenge.curves_for_figure(folder)
    assert list(curves["all"]) == list(SYNTHETIC) and str(folder) in source
