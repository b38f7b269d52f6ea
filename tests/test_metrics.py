"""The 300-W error measures (fkd_utils.metrics), against hand-worked numbers."""
import numpy as np
import pytest

from fkd_utils import metrics


def shape_with_eyes(left=(10.0, 20.0), right=(20.0, 20.0), n=1, seed=0):
    """(n, 68, 2) ground truth whose outer eye corners 36 and 45 are at the given places."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 30, (n, 68, 2))
    gt[:, 36], gt[:, 45] = left, right
    return gt


# --------------------------------------------------------------------------- NME

def test_perfect_prediction_has_zero_error():
    gt = shape_with_eyes(n=3)
    np.testing.assert_array_equal(metrics.nme(gt, gt), 0)
    np.testing.assert_array_equal(metrics.nme(gt, gt, points=51), 0)


def test_nme_hand_worked_uniform_shift():
    # Eye corners 10 px apart; every point off by (3, 4), i.e. 5 px: NME 5 / 10 = 0.5.
    gt = shape_with_eyes((10, 20), (20, 20))
    pred = gt + [3.0, 4.0]
    assert metrics.nme(pred, gt)[0] == pytest.approx(0.5)
    assert metrics.nme(pred, gt, points=51)[0] == pytest.approx(0.5)
    assert metrics.interocular(gt)[0] == pytest.approx(10)


def test_nme_hand_worked_one_point_off():
    # Eye corners (0, 0) and (6, 8): 10 px apart. Only point 30 is off, by (6, 8) = 10 px.
    # 68 points: (10 / 10) / 68. 51 points: (10 / 10) / 51.
    gt = shape_with_eyes((0, 0), (6, 8))
    pred = gt.copy()
    pred[0, 30] += [6, 8]
    assert metrics.nme(pred, gt)[0] == pytest.approx(1 / 68)
    assert metrics.nme(pred, gt, points=51)[0] == pytest.approx(1 / 51)


def test_nme_51_ignores_the_jaw_but_keeps_the_eye_normaliser():
    gt = shape_with_eyes((0, 0), (20, 0))                     # 20 px
    pred = gt.copy()
    pred[0, :17] += 100.0                                     # a wild jaw
    assert metrics.nme(pred, gt, points=51)[0] == 0
    assert metrics.nme(pred, gt)[0] == pytest.approx(17 * np.hypot(100, 100) / 20 / 68)
    # Move a non-jaw point by 4 px: 4 / 20 / 51, still normalised by the eye corners.
    pred[0, 40] += [0, 4]
    assert metrics.nme(pred, gt, points=51)[0] == pytest.approx(4 / 20 / 51)


def test_nme_normaliser_is_the_ground_truth_not_the_prediction():
    gt = shape_with_eyes((0, 0), (10, 0))
    pred = gt.copy()
    pred[0, 45] = [30, 0]                                     # predicted eye 20 px off
    assert metrics.nme(pred, gt)[0] == pytest.approx(20 / 10 / 68)


def test_nme_per_image():
    gt = shape_with_eyes((0, 0), (10, 0), n=3)
    pred = gt + np.array([[0, 0], [1, 0], [0, 2]], dtype=float)[:, None, :]
    np.testing.assert_allclose(metrics.nme(pred, gt), [0, 0.1, 0.2])


def test_part_errors_hand_worked():
    gt = shape_with_eyes((0, 0), (10, 0))
    pred = gt.copy()
    pred[0, 48:68] += [0, 5]                                  # the whole mouth 5 px
    parts = metrics.part_errors(pred, gt)
    assert set(parts) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert parts["mouth"][0] == pytest.approx(0.5)
    assert parts["jaw"][0] == parts["brows"][0] == parts["nose"][0] == parts["eyes"][0] == 0


@pytest.mark.parametrize("pred_shape, gt_shape", [
    ((2, 68, 2), (3, 68, 2)), ((2, 51, 2), (2, 51, 2)), ((68, 2), (68, 2)),
    ((2, 68, 3), (2, 68, 3)), ((2, 68, 2), (2, 68)),
])
def test_bad_shapes_raise_value_error(pred_shape, gt_shape):
    with pytest.raises(ValueError):
        metrics.nme(np.zeros(pred_shape), np.ones(gt_shape))


def test_bad_points_and_coinciding_eyes():
    gt = shape_with_eyes()
    with pytest.raises(ValueError, match="68 or 51"):
        metrics.nme(gt, gt, points=49)
    gt[0, 45] = gt[0, 36]
    with pytest.raises(ValueError, match="eye corners"):
        metrics.nme(gt, gt)


# ------------------------------------------------------------------ CED, AUC, FR

def test_ced_hand_worked():
    errors = [0.01, 0.02, 0.02, 0.05]
    np.testing.assert_allclose(metrics.ced(errors, [0, 0.01, 0.015, 0.02, 0.04, 0.05, 1]),
                               [0, 0.25, 0.25, 0.75, 0.75, 1, 1])


def test_ced_is_monotone_and_reaches_one():
    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 0.02, 500)
    grid = np.linspace(0, errors.max() * 1.01, 400)
    curve = metrics.ced(errors, grid)
    assert np.all(np.diff(curve) >= 0)
    assert curve[0] == 0 and curve[-1] == 1
    assert metrics.ced(errors, [errors.max()])[0] == 1
    # Independent reference: the empirical fraction at each threshold.
    np.testing.assert_allclose(curve, [(errors <= t).mean() for t in grid])


def test_threshold_grid_is_the_official_one():
    grid = metrics.threshold_grid()
    assert len(grid) == 161 and grid[0] == 0 and grid[-1] == pytest.approx(0.08)
    np.testing.assert_allclose(np.diff(grid), 0.0005)


def test_auc_extremes():
    assert metrics.auc(np.zeros(10)) == pytest.approx(1.0)
    assert metrics.auc(np.full(10, 0.0801)) == 0.0
    assert metrics.auc([0.5, 1.0, 9.0], alpha=0.1) == 0.0


def test_auc_of_uniform_errors_is_one_half():
    # CED(t) = t / alpha on [0, alpha] -> AUC = (1/alpha) * int t/alpha dt = 1/2.
    errors = np.linspace(0, 0.08, 100001)[1:]
    assert metrics.auc(errors) == pytest.approx(0.5, abs=2e-3)
    # Errors uniform on [0, 2 alpha]: CED(t) = t / (2 alpha) -> AUC 1/4; FR@alpha 1/2.
    errors = np.linspace(0, 0.16, 100001)[1:]
    assert metrics.auc(errors) == pytest.approx(0.25, abs=2e-3)
    assert metrics.failure_rate(errors) == pytest.approx(0.5, abs=1e-4)


def test_auc_hand_worked_step():
    # Half the images at error 0, half above alpha: CED = 0.5 on the whole grid -> AUC 0.5.
    assert metrics.auc([0, 0, 1, 1]) == pytest.approx(0.5)
    # One image at error 0.04 (= alpha / 2): CED 0 below 0.04, 1 from 0.04 on. On the
    # 0.0005 grid the trapezoid adds half a step: (0.04 + 0.0005 / 2) / 0.08.
    assert metrics.auc([0.04]) == pytest.approx((0.04 + 0.00025) / 0.08)


def test_auc_from_curve_matches_auc():
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 0.1, 200)
    grid = metrics.threshold_grid()
    assert metrics.auc_from_curve(grid, metrics.ced(errors, grid)) == pytest.approx(
        metrics.auc(errors))
    # A curve that goes past alpha is cut at alpha.
    long = np.linspace(0, 0.2, 401)
    assert metrics.auc_from_curve(long, np.ones_like(long)) == pytest.approx(1.0)


def test_failure_rate_counts_strictly_greater():
    assert metrics.failure_rate([0.08, 0.08, 0.0800001, 0.5], alpha=0.08) == pytest.approx(0.5)
    assert metrics.failure_rate([0.1], alpha=0.1) == 0.0
    assert metrics.failure_rate(np.zeros(5)) == 0.0
    with pytest.raises(ValueError):
        metrics.failure_rate([])
    with pytest.raises(ValueError):
        metrics.ced([])


def test_failure_rate_from_curve():
    grid = metrics.threshold_grid()
    errors = np.array([0.01, 0.05, 0.07, 0.09, 0.2])
    assert metrics.failure_rate_from_curve(grid, metrics.ced(errors, grid)) == pytest.approx(
        metrics.failure_rate(errors))


# -------------------------------------------------------------------------- evaluate

def test_evaluate_tables():
    gt = shape_with_eyes((0, 0), (10, 0), n=4)
    pred = gt.copy()
    pred[1] += [0.5, 0]                                  # NME 0.05
    pred[2] += [1.0, 0]                                  # NME 0.1 -> a failure at 0.08
    pred[3, :17] += [0.3, 0.4]                           # jaw only: 68 pts 17*0.05/68, 51 pts 0
    subsets = np.array(["helen", "lfpw", "helen", "lfpw"])
    report = metrics.evaluate(pred, gt, subsets)
    assert set(report) == {"68", "51"}
    for table in report.values():
        assert list(table) == ["all", "helen", "lfpw"]
        for row in table.values():
            assert set(row) == {"n", "nme", "auc", "fr", "nme_finite", "n_nonfinite"}
    t68, t51 = report["68"], report["51"]
    assert t68["all"]["n"] == 4 and t68["helen"]["n"] == 2 and t68["lfpw"]["n"] == 2
    jaw68 = 17 * 0.05 / 68
    assert t68["all"]["nme"] == pytest.approx((0 + 0.05 + 0.1 + jaw68) / 4)
    assert t51["all"]["nme"] == pytest.approx((0 + 0.05 + 0.1 + 0) / 4)
    assert t68["helen"]["nme"] == pytest.approx(0.05)        # images 0 and 2
    assert t68["lfpw"]["nme"] == pytest.approx((0.05 + jaw68) / 2)
    assert t68["all"]["fr"] == pytest.approx(0.25)
    assert t68["helen"]["fr"] == pytest.approx(0.5) and t68["lfpw"]["fr"] == 0
    assert t51["helen"]["auc"] == pytest.approx(metrics.auc([0.0, 0.1]))
    assert t51["lfpw"]["auc"] == pytest.approx(metrics.auc([0.05, 0.0]))


def test_evaluate_without_subsets():
    gt = shape_with_eyes(n=2)
    report = metrics.evaluate(gt, gt)
    assert list(report["68"]) == ["all"] and list(report["51"]) == ["all"]
    assert report["68"]["all"] == {"n": 2, "nme": 0.0, "auc": pytest.approx(1.0), "fr": 0.0,
                                   "nme_finite": 0.0, "n_nonfinite": 0}


def test_evaluate_rejects_bad_shapes():
    gt = shape_with_eyes(n=3)
    with pytest.raises(ValueError):
        metrics.evaluate(gt[:2], gt)
    with pytest.raises(ValueError):
        metrics.evaluate(gt, gt, subsets=["a", "b"])          # 2 labels for 3 images
