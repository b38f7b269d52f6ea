"""The shape correction: the eye-corner frame, the ridge fit, storage and the landmarker's use."""
import json
import shutil

import numpy as np
import pytest
from skimage import data as skdata

from fkd_utils import landmarker, pipeline, shape_correction
from fkd_utils.io import DataError
from fkd_utils.markup import OUTER_EYE_CORNERS


def _shapes(count=40, seed=0):
    rng = np.random.default_rng(seed)
    shapes = rng.uniform(-1, 1, (count, 68, 2)) * 0.3
    shapes[:, OUTER_EYE_CORNERS[0]] = (-0.5, 0.0)
    shapes[:, OUTER_EYE_CORNERS[1]] = (0.5, 0.0)
    return shapes


def _similarity(shapes, seed=1):
    """Each shape (in eye-corner units) placed in a photo: scaled, turned and moved."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(shapes)
    for i, shape in enumerate(shapes):
        angle, scale, shift = rng.uniform(-0.5, 0.5), rng.uniform(30, 120), rng.uniform(0, 400, 2)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        out[i] = scale * shape @ turn.T + shift
    return out


def test_frame_puts_the_eye_corners_at_plus_minus_a_half_and_inverts_exactly():
    photo = _similarity(_shapes())
    frame = shape_correction.eye_frame(photo)
    framed = shape_correction.to_frame(photo, frame)
    np.testing.assert_allclose(framed[:, OUTER_EYE_CORNERS[0]], [[-0.5, 0.0]] * len(photo), atol=1e-12)
    np.testing.assert_allclose(framed[:, OUTER_EYE_CORNERS[1]], [[0.5, 0.0]] * len(photo), atol=1e-12)
    np.testing.assert_allclose(framed, _shapes(), atol=1e-9)   # the shapes before placing
    np.testing.assert_allclose(shape_correction.from_frame(framed, frame), photo, atol=1e-9)


def test_fit_learns_an_error_that_follows_the_shape_and_holds_at_any_placement():
    truth = _shapes(200)
    # the "model" pulls point 3 towards the middle in proportion to how far point 30 (the
    # nose) sits off-centre, as a turned face's far jaw is pulled: a linear, pose-led error
    predicted = truth.copy()
    predicted[:, 3, 0] += 0.4 * truth[:, 30, 0]
    placed_pred, placed_truth = _similarity(predicted), _similarity(truth)  # same placements
    correction = shape_correction.fit(placed_pred, placed_truth, ridge=1e-9)
    assert correction.shape == (137, 136)
    fixed = shape_correction.corrected(_similarity(predicted, seed=7), correction)
    np.testing.assert_allclose(fixed, _similarity(truth, seed=7), atol=1e-6)
    # a penalty shrinks the correction towards none
    shrunk = shape_correction.fit(placed_pred, placed_truth, ridge=1e3)
    assert np.abs(shrunk[:-1]).max() < np.abs(correction[:-1]).max()


def test_no_correction_or_degenerate_shapes_are_left_as_they_are():
    shapes = _similarity(_shapes(3))
    np.testing.assert_array_equal(shape_correction.corrected(shapes, None), shapes)
    correction = np.zeros((137, 136))
    correction[-1] = 0.1                               # move every point by 0.1 eye distance
    broken = shapes.copy()
    broken[1, OUTER_EYE_CORNERS[1]] = broken[1, OUTER_EYE_CORNERS[0]]   # corners coincide
    fixed = shape_correction.corrected(broken, correction)
    np.testing.assert_array_equal(fixed[1], broken[1])
    assert not np.allclose(fixed[0], broken[0])
    with pytest.raises(ValueError, match="distinct eye corners"):
        shape_correction.fit(broken[1:2], broken[1:2])
    lost = shapes.copy()
    lost[2, 10] = np.nan                               # one point lost: that face is left alone
    fixed = shape_correction.corrected(lost, correction)
    np.testing.assert_array_equal(fixed[2], lost[2])
    assert np.isfinite(fixed[[0, 1]]).all()
    # a face with a point that is not finite does not reach the fit (else all would be NaN)
    truth = _shapes(60)
    predicted = truth + 0.01
    predicted[0, 5] = np.nan
    assert np.isfinite(shape_correction.fit(_similarity(predicted), _similarity(truth))).all()


def test_stored_corrections_are_checked_and_found_per_stage_count(tmp_path):
    stored = {"2": np.full((137, 136), 0.5)}
    path = shape_correction.save(tmp_path, stored)
    manifest = {"files": {path.name: landmarker.sha256(path)},
                shape_correction.MANIFEST_KEY: {"file": path.name}}
    np.testing.assert_allclose(shape_correction.load(tmp_path, manifest, 2), stored["2"])
    assert shape_correction.load(tmp_path, manifest, 3) is None       # none for 3 stages
    assert shape_correction.load(tmp_path, {"files": {}}, 2) is None   # an older folder
    unlisted = {"files": {}, shape_correction.MANIFEST_KEY: {"file": path.name}}
    with pytest.raises(DataError, match="not listed in manifest.json"):
        shape_correction.load(tmp_path, unlisted, 2)
    manifest["files"][path.name] = "0" * 64
    with pytest.raises(DataError, match="sha256 does not match"):
        shape_correction.load(tmp_path, manifest, 2)
    path.unlink()
    with pytest.raises(DataError, match="missing from the weights folder"):
        shape_correction.load(tmp_path, manifest, 2)


def test_landmarker_moves_points_by_the_stored_correction(untrained_weights, tmp_path):
    image, box = skdata.astronaut(), [[160.0, 40.0, 320.0, 230.0]]
    plain = landmarker.Landmarker(untrained_weights, stages=2).landmarks(image, box)
    folder = tmp_path / "weights"
    shutil.copytree(untrained_weights, folder)
    correction = np.zeros((137, 136))
    correction[-1, 0::2] = 0.1                         # every point 0.1 eye distance along the eyes
    path = shape_correction.save(folder, {"2": correction})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][path.name] = landmarker.sha256(path)
    manifest[shape_correction.MANIFEST_KEY] = {"file": path.name}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    moved = landmarker.Landmarker(folder, stages=2).landmarks(image, box)
    eyes = plain[:, OUTER_EYE_CORNERS[1]] - plain[:, OUTER_EYE_CORNERS[0]]
    np.testing.assert_allclose(moved - plain, np.broadcast_to(0.1 * eyes[:, None], plain.shape),
                               atol=1e-3)
    assert landmarker.Landmarker(folder, stages=3).correction is None  # stored for 2 only


def test_calibration_fits_each_stage_count_on_the_fit_faces(untrained_weights):
    from fkd_utils.data import default_data_dir
    from fkd_utils.preprocess import face_boxes, read_samples
    from fkd_utils.weights_io import import_model, read_weights_manifest
    manifest = read_weights_manifest(untrained_weights)
    models = {n: import_model(untrained_weights, n, manifest) for n in manifest["models"]}
    data_dir = default_data_dir()
    x_bias = {"cascade_stage1": 1.0, "cascade_region_nose": -2.0}
    got = landmarker.shape_correction_calibration(models, data_dir, manifest, x_bias, every=3,
                                                  chunk=5)
    assert sorted(got) == ["1", "2", "3"]
    samples = landmarker._fit_samples(data_dir, 3)
    images, gt = read_samples(samples)
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    faces, face_images, _ = landmarker.face_crops(images, [[b] for b in boxes], manifest)
    for k in (1, 3):  # (batches of 5 and of all faces round differently: compare the effect)
        points = pipeline.predict_cascade(models, faces, face_images, stages=k, x_bias=x_bias)[0]
        want = shape_correction.corrected(points, shape_correction.fit(points, gt))
        np.testing.assert_allclose(shape_correction.corrected(points, got[str(k)]), want,
                                   atol=0.05)


def test_profiles_evaluate_with_the_corrections_of_their_models(tmp_path, monkeypatch):
    from fkd_utils.data import default_data_dir
    from fkd_utils.profiles import get_profile
    from fkd_utils.weights_io import read_weights_manifest, shipped_weights_dir
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    data_dir = default_data_dir()
    # profiles that train their own models: no corrections (none were measured for them)
    assert pipeline.stored_corrections("quick", data_dir) == shape_correction.Corrections()
    # the real profile evaluates the shipped models: their folder's corrections
    shipped = shipped_weights_dir("real")
    want = shape_correction.folder_corrections(shipped, read_weights_manifest(shipped))
    got = pipeline.stored_corrections("real", data_dir)
    assert got.x_bias == want.x_bias and got.x_bias
    assert sorted(got.shapes) == sorted(want.shapes) == [1, 2, 3]
    # ... but not a cascade trained here (fkd train --profile real --retrain)
    local = pipeline.model_path(get_profile("real"), "cascade_stage1", data_dir)
    local.parent.mkdir(parents=True)
    local.write_bytes(b"")
    assert pipeline.stored_corrections("real", data_dir) == shape_correction.Corrections()
