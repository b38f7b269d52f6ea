"""The mirror bias: measured by hand, removed exactly, wired into the cascade and its export."""
import json
import shutil

import numpy as np
import pytest
from skimage import data as skdata

from fkd_utils import landmarker, mirror_bias, pipeline
from fkd_utils.markup import JAW, OUTER_EYE_CORNERS, REGIONS


def _faces(count=3, eye_distance=10.0, seed=0):
    shapes = np.random.default_rng(seed).uniform(0, 50, (count, 68, 2))
    shapes[:, OUTER_EYE_CORNERS[0]] = (0.0, 0.0)
    shapes[:, OUTER_EYE_CORNERS[1]] = (eye_distance, 0.0)
    return shapes


def test_bias_is_truth_minus_prediction_in_x_over_faces_within_the_threshold():
    gt = _faces()
    predicted = gt + np.array([-0.5, 0.25])               # 0.5 px left, 0.25 px low
    assert mirror_bias.x_bias(predicted, gt) == pytest.approx(0.5)  # y does not count
    predicted[2] += 30.0                                  # a missed face: NME 3 > 0.08
    assert mirror_bias.x_bias(predicted, gt) == pytest.approx(0.5)
    assert mirror_bias.x_bias(predicted, gt, max_nme=np.inf) == pytest.approx((0.5 * 2 - 29.5) / 3)
    nose = list(REGIONS["nose"])
    predicted = gt.copy()
    predicted[:, nose, 0] -= 0.4                          # 0.4 px left on the nose only
    assert mirror_bias.x_bias(predicted, gt, nose) == pytest.approx(0.4)
    assert mirror_bias.x_bias(predicted, gt) == pytest.approx(0.4 * len(nose) / 68)
    assert np.isnan(mirror_bias.x_bias(gt + 30.0, gt))   # no face placed: nothing to measure


def test_shift_moves_x_only_and_undoes_itself():
    points = _faces(2)
    moved = mirror_bias.shift_x(points, 0.6)
    np.testing.assert_allclose(moved[..., 0] - points[..., 0], 0.6)
    np.testing.assert_array_equal(moved[..., 1], points[..., 1])
    np.testing.assert_allclose(mirror_bias.shift_x(moved, -0.6), points)
    np.testing.assert_array_equal(mirror_bias.shift_x(points, None), points)
    assert moved is not points


def test_manifest_biases_skip_missing_and_non_finite_entries():
    assert mirror_bias.biases_from_manifest({}) == {}
    assert mirror_bias.biases_from_manifest({"mirror_bias_px": None}) == {}
    got = mirror_bias.biases_from_manifest(
        {"mirror_bias_px": {"cascade_stage1": 0.6, "cascade_stage2": float("nan"),
                            "cascade_stage3": None, "cascade_region_nose": "0.5"}})
    assert got == {"cascade_stage1": 0.6}


def _astronaut_faces(manifest):
    image = skdata.astronaut()
    faces, face_images, _ = landmarker.face_crops([image], [[[160.0, 40.0, 320.0, 230.0]]],
                                                  manifest)
    return faces, face_images


def _models(weights):
    from fkd_utils.weights_io import import_model, read_weights_manifest
    manifest = read_weights_manifest(weights)
    return manifest, {n: import_model(weights, n, manifest) for n in manifest["models"]}


def test_cascade_adds_each_models_bias_to_its_own_points(untrained_weights):
    manifest, models = _models(untrained_weights)
    faces, images = _astronaut_faces(manifest)
    stage1 = {"cascade_stage1": models["cascade_stage1"]}
    plain = pipeline.predict_cascade(stage1, faces, images, stages=1)[0]
    moved = pipeline.predict_cascade(stage1, faces, images, stages=1,
                                     x_bias={"cascade_stage1": 2.0})[0]
    np.testing.assert_allclose(moved - plain, np.broadcast_to([2.0, 0.0], plain.shape), atol=1e-9)
    # a region ResNet's bias moves its region's points only, by its share of the blend
    plain = pipeline.predict_cascade(models, faces, images)[0]
    moved = pipeline.predict_cascade(models, faces, images, x_bias={"cascade_region_nose": 3.0})[0]
    shift = moved - plain
    nose = list(REGIONS["nose"])
    np.testing.assert_allclose(shift[:, nose, 0], pipeline.REGION_BLEND * 3.0, atol=1e-9)
    rest = np.setdiff1d(np.arange(68), nose)
    np.testing.assert_allclose(shift[:, rest], 0.0, atol=1e-9)
    np.testing.assert_allclose(shift[..., 1], 0.0, atol=1e-9)
    # the jaw ResNet's moves the jaw only, by its share of the jaw's blend
    shift = pipeline.predict_cascade(models, faces, images,
                                     x_bias={pipeline.JAW_MODEL: 3.0})[0] - plain
    np.testing.assert_allclose(shift[:, list(JAW), 0], pipeline.JAW_BLEND * 3.0, atol=1e-9)
    np.testing.assert_allclose(shift[:, 17:], 0.0, atol=1e-9)
    np.testing.assert_allclose(shift[..., 1], 0.0, atol=1e-9)


def test_landmarker_applies_the_manifests_biases(untrained_weights, tmp_path):
    image = skdata.astronaut()
    box = [[160.0, 40.0, 320.0, 230.0]]
    folder = tmp_path / "weights"
    shutil.copytree(untrained_weights, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["models"][pipeline.JAW_MODEL]  # a folder from before the jaw ResNet runs too
    (folder / "manifest.json").write_text(json.dumps(manifest))
    plain = landmarker.Landmarker(folder, stages=1).landmarks(image, box)
    manifest["mirror_bias_px"] = {"cascade_stage1": 1.5}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    corrected = landmarker.Landmarker(folder, stages=1)
    assert corrected.x_bias == {"cascade_stage1": 1.5}
    assert pipeline.JAW_MODEL not in corrected.models
    moved = corrected.landmarks(image, box)
    jaw = list(JAW)  # no region ResNet moves the jaw: it keeps stage 1's points, corrected
    np.testing.assert_allclose(moved[:, jaw, 0] - plain[:, jaw, 0], 1.5, atol=1e-4)
    np.testing.assert_allclose(moved[:, jaw, 1], plain[:, jaw, 1], atol=1e-4)


def test_calibration_measures_each_model_on_the_fit_faces(untrained_weights):
    from fkd_utils.data import default_data_dir, split_samples
    from fkd_utils.preprocess import face_boxes, read_samples
    manifest, models = _models(untrained_weights)
    data_dir = default_data_dir()  # the embedded synthetic set
    # untrained models miss every face: measure them all (max_nme=inf) to follow the wiring
    got = landmarker.mirror_bias_calibration(models, data_dir, manifest, every=3, chunk=5,
                                             max_nme=np.inf)
    regions = list(pipeline.CASCADE_REGIONS.values())
    assert sorted(got) == sorted([*pipeline.APPROACH_MODELS["cascade"]]
                                 + [mirror_bias.mirrored(n) for n in regions])
    samples = landmarker._fit_samples(data_dir, 3)
    train = [s.id for s in split_samples(data_dir, "train")]
    tenth = {i for i, chosen in zip(train, pipeline.model_selection(np.array(train))) if chosen}
    assert samples and not {s.id for s in samples} & tenth  # never the selection tenth
    images, gt = read_samples(samples)
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    faces, face_images, _ = landmarker.face_crops(images, [[b] for b in boxes], manifest)
    stages = {n: models[n] for n in pipeline.CASCADE_STAGES}
    result, shapes = pipeline.predict_cascade(stages, faces, face_images)
    for name, shape in zip(pipeline.CASCADE_STAGES, shapes):
        want = (gt[..., 0] - shape[..., 0]).mean()
        assert got[name] == pytest.approx(want, abs=1e-3)
    # a mirrored read's bias goes to the ResNet that read: the left eye's reads the right eye
    region_models = {r: models[n] for r, n in pipeline.CASCADE_REGIONS.items()}
    reads = pipeline.mirrored_reads(result, face_images, pipeline.region_squares(result),
                                    region_models, manifest["region_size"])
    right_eye = list(REGIONS["right_eye"])
    assert got[mirror_bias.mirrored("cascade_region_left_eye")] == pytest.approx(
        (gt[:, right_eye, 0] - reads[:, right_eye, 0]).mean(), abs=1e-3)
    jaw = pipeline.predict_jaw(models[pipeline.JAW_MODEL], face_images, result)
    assert got[pipeline.JAW_MODEL] == pytest.approx((gt[:, list(JAW), 0] - jaw[..., 0]).mean(),
                                                    abs=1e-3)
    # with no face within the failure threshold, nothing is corrected: the mirrored reads keep
    # a null entry (measured, no correction), so that --flip still runs on such a folder
    nothing = landmarker.mirror_bias_calibration(models, data_dir, manifest, every=3)
    assert nothing == {mirror_bias.mirrored(n): None for n in regions}
    assert mirror_bias.biases_from_manifest({"mirror_bias_px": nothing}) == {}


def test_flip_needs_the_mirrored_reads_biases_and_moves_the_regions_only(untrained_weights,
                                                                         tmp_path):
    from fkd_utils.io import DataError
    image, box = skdata.astronaut(), [[160.0, 40.0, 320.0, 230.0]]
    folder = tmp_path / "weights"
    shutil.copytree(untrained_weights, folder)
    with pytest.raises(DataError, match="--flip needs the biases of mirrored reads"):
        landmarker.Landmarker(folder, flip=True)
    with pytest.raises(ValueError, match="only the cascade"):
        landmarker.Landmarker(folder, approach="end-to-end", flip=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    readers = list(pipeline.CASCADE_REGIONS.values())

    def flipped_with(biases):
        manifest["mirror_bias_px"] = biases
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return landmarker.Landmarker(folder, stages=2, flip=True)

    with pytest.raises(DataError, match="does not list for .'cascade_region_mouth'"):
        flipped_with({mirror_bias.mirrored(n): 0.5 for n in readers[:-1]})
    unmeasured = flipped_with({mirror_bias.mirrored(n): None for n in readers})  # null: no shift
    assert unmeasured.settings()["flip"] is True
    plain = landmarker.Landmarker(folder, stages=2).landmarks(image, box)
    flip = unmeasured.landmarks(image, box)
    inner = np.setdiff1d(np.arange(68), list(JAW))
    np.testing.assert_allclose(flip[:, list(JAW)], plain[:, list(JAW)], atol=1e-6)
    assert np.abs(flip[:, inner] - plain[:, inner]).max() > 1e-3
    # a mirrored read's bias moves its region's x by half of it (one read of two) in the blend
    moved = flipped_with({mirror_bias.mirrored(n): 1.0 for n in readers}).landmarks(image, box)
    np.testing.assert_allclose(moved[:, inner, 0] - flip[:, inner, 0],
                               pipeline.REGION_BLEND * 0.5, atol=1e-4)
    np.testing.assert_allclose(moved[:, inner, 1], flip[:, inner, 1], atol=1e-4)


def test_split_reads_keys_both_kinds_by_model_name():
    biases = {"cascade_stage1": 0.6, "cascade_region_nose": 0.5,
              mirror_bias.mirrored("cascade_region_nose"): 1.2}
    plain, reads = mirror_bias.split_reads(biases)
    assert plain == {"cascade_stage1": 0.6, "cascade_region_nose": 0.5}
    assert reads == {"cascade_region_nose": 1.2}
