"""The approaches' plumbing: region crop -> merge round trip, stored models, prediction files."""
from dataclasses import replace

import numpy as np
import pytest

from fkd_utils import crop, pipeline, synthetic
from fkd_utils.io import DataError
from fkd_utils.markup import JAW, REGIONS
from fkd_utils.profiles import get_profile


def _faces(n=3, size=96, seed=0):
    rng = np.random.default_rng(seed)
    pairs = [synthetic.render_face(rng, size) for _ in range(n)]
    return [p[0] for p in pairs], np.stack([p[1] for p in pairs])


def test_ground_truth_through_region_crop_and_merge_comes_back_exactly():
    images, gt = _faces()
    base = np.zeros_like(gt)
    base[:, list(JAW)] = gt[:, list(JAW)]  # the jaw comes from approach 1
    shapes = base.copy()
    for region in REGIONS:
        squares = pipeline.squares_from_shapes(gt, region)
        crops, transforms, clipped = pipeline.place_region_crops(images, squares, 32)
        assert crops.shape == (len(images), 32, 32, 3) and crops.dtype == np.uint8
        perfect = crop.to_crop(gt[:, list(REGIONS[region])], transforms)
        assert np.all((perfect > -0.5) & (perfect < 31.5))  # the region lies inside its crop
        pipeline.merge_region(shapes, region, perfect, transforms)
    np.testing.assert_allclose(shapes, gt, atol=1e-9)


def test_region_crop_outside_the_image_is_moved_inside_and_counted():
    images, gt = _faces(2)
    centres = np.array([[-20.0, 40.0], [40.0, 40.0]])
    crops, transforms, clipped = pipeline.place_region_crops(images, (centres, np.array([30.0, 30.0])), 16)
    assert clipped == 1
    corner = crop.from_crop(np.array([[-0.5, -0.5]]), transforms[0])[0]
    assert corner[0] >= -0.5 - 1e-9  # the moved square starts inside the image


def test_every_profile_has_every_model_and_unknown_profiles_fail():
    for name in ("quick", "cpu", "full", "real", "release"):
        specs = pipeline.model_specs(name)
        assert set(pipeline.models_for(pipeline.APPROACHES + pipeline.OUR_APPROACHES)) <= set(specs)
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown approach"):
        pipeline.models_for(["telepathy"])


def test_a_stored_model_of_the_wrong_shape_is_refused(tmp_path):
    from fkd_utils.models import build_resnet
    spec = pipeline.model_specs("quick")["end_to_end"]
    wrong = build_resnet(32, 16)
    with pytest.raises(DataError, match="m.keras.*end_to_end needs"):
        pipeline.check_model(wrong, spec, tmp_path / "m.keras")


def test_predictions_file_round_trip_and_id_checks(tmp_path):
    ids = np.array(["a/1.png", "a/2.png", "b/3.png"])
    points = np.random.default_rng(0).random((3, 68, 2))
    path = pipeline.save_predictions(tmp_path / "p.npz", ids, points)
    got_ids, got = pipeline.load_predictions(path, ids=["b/3.png", "a/1.png", "a/2.png"])
    np.testing.assert_array_equal(got, points[[2, 0, 1]])
    with pytest.raises(DataError, match="p.npz: ids do not match"):
        pipeline.load_predictions(path, ids=["a/1.png", "c/9.png"])
    with pytest.raises(DataError, match="not found"):
        pipeline.load_predictions(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", ids=ids, points=np.zeros((3, 5, 2)))
    with pytest.raises(DataError, match="bad.npz: points have shape"):
        pipeline.load_predictions(tmp_path / "bad.npz")


def test_flip_averaging_of_a_symmetric_predictor_changes_nothing():
    class Centre:
        """Predicts every point at the crop centre: invariant under the flip."""
        def predict_on_batch(self, x):
            n, size = x.shape[0], x.shape[1]
            return np.full((n, 136), (size - 1) / 2.0, np.float32)

    images = np.zeros((2, 16, 16, 3), np.uint8)
    plain = pipeline.predict_points(Centre(), images)
    both = pipeline.predict_points(Centre(), images, flip_average=True)
    np.testing.assert_allclose(plain, both)
    np.testing.assert_allclose(plain, 7.5)


def test_region_boxes_used_are_the_crops_squares_and_are_saved(tmp_path):
    images, gt = _faces(n=2)
    squares = pipeline.region_squares(gt)
    squares["mouth"][0][0] = np.array([-50.0, 40.0])                 # leaves the image: moved
    boxes = pipeline.used_region_boxes(squares, images)
    assert boxes.shape == (2, len(REGIONS), 4)
    for r, region in enumerate(REGIONS):
        _, transforms, _ = pipeline.place_region_crops(images, squares[region], 32)
        # the crop's corners, mapped back from crop pixels, are the saved box (1-based)
        corners = crop.from_crop(np.array([[[-0.5, -0.5], [31.5, 31.5]]] * 2), transforms)
        np.testing.assert_allclose(boxes[:, r], corners.reshape(2, 4) + 1, atol=1e-9)
    assert boxes[0, -1, 0] >= 0.5 - 1e-9         # moved inside: the image edge is at 0.5 (1-based)
    ids = np.array(["a", "b"])
    pred = pipeline.Prediction("box", "test", ids, gt + 1, np.array(["s", "s"]), gt + 1,
                               boxes={"face_boxes": np.ones((2, 4)), "region_boxes": boxes})
    path = pipeline.save_predictions(tmp_path / "p.npz", ids, gt, **pred.boxes)
    got = pipeline.load_boxes(path, ["b", "a"])
    np.testing.assert_allclose(got["region_boxes"], boxes[[1, 0]])
    assert set(got) == {"face_boxes", "region_boxes"}
    plain = pipeline.save_predictions(tmp_path / "q.npz", ids, gt)
    assert pipeline.load_boxes(plain, ["a"]) == {}


def test_the_quick_profile_blends_its_cascade_with_notebook_03s_regions():
    quick, cpu = pipeline.model_specs("quick"), pipeline.model_specs("cpu")
    for region, name in pipeline.CASCADE_REGIONS.items():
        assert quick[name] == replace(quick[f"region_{region}"], name=name)   # renamed only
        assert cpu[name].head == "integral" != cpu[f"region_{region}"].head


def test_a_quick_cascade_region_is_notebook_03s_model(monkeypatch):
    asked = []
    real_get_model = pipeline.get_model

    def spy(name, *args, **kwargs):
        asked.append((name, args[2] if len(args) > 2 else kwargs.get("retrain")))
        if name.startswith("region_"):
            return "the region model"
        return real_get_model(name, *args, **kwargs)

    monkeypatch.setattr(pipeline, "get_model", spy)
    got = real_get_model("cascade_region_mouth", "quick", "unused", {"cascade_region_mouth"})
    assert got == "the region model" and asked == [("region_mouth", True)]


def test_the_release_profile_widens_the_face_models_jitter_and_keeps_the_rest():
    release, cpu = pipeline.model_specs("release"), pipeline.model_specs("cpu")
    assert release["cascade_stage1"].augment == pipeline.DETECTOR_AUGMENT
    assert release["end_to_end"].augment == pipeline.DETECTOR_AUGMENT
    wider = pipeline.DETECTOR_AUGMENT
    assert wider.translate > cpu["cascade_stage1"].augment.translate
    assert wider.scale > cpu["cascade_stage1"].augment.scale
    for name in ("cascade_stage2", "cascade_region_mouth", "region_nose"):
        assert release[name] == cpu[name]      # refiners and regions: unchanged
    assert get_profile("release").image_size == get_profile("cpu").image_size


def test_warm_start_copies_the_shipped_model_exactly():
    from fkd_utils.models import build_resnet
    from fkd_utils.train import target_size
    spec = pipeline.model_specs("release")["cascade_region_nose"]
    n = target_size(spec.target)
    # the spec's own precision: the shipped model computes in it too (its saved policy)
    model = build_resnet(spec.input_size, n, spec.stages, spec.head, spec.dense_layers,
                         precision=spec.precision, target_mean=np.zeros(n), target_std=np.ones(n))
    pipeline.warm_start(model, "real", spec)
    shipped = pipeline._shipped_model("real", spec.name)
    x = np.random.default_rng(0).integers(0, 255, (2, spec.input_size, spec.input_size, 3))
    x = x.astype("uint8")
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(shipped(x, training=False)), atol=1e-4)
    other = build_resnet(spec.input_size, n, spec.stages, "paper", spec.dense_layers)
    with pytest.raises(DataError, match="layers differ"):
        pipeline.warm_start(other, "real", spec)


def _hand_mirrored_jaw(jaw, width):
    """17 jaw points as they lie in the mirrored photo, written out by hand: point k of the
    mirror image is point 16 - k of the photo, at x -> width - 1 - x."""
    out = np.array(jaw[:, ::-1], dtype=np.float64)
    out[..., 0] = width - 1 - out[..., 0]
    return out


def test_jaw_training_faces_hold_each_half_once_as_a_right_half():
    images, gt = _faces(2)
    photos, shapes = pipeline.with_mirrored(images, gt)
    assert len(photos) == 4 and shapes.shape == (4, 68, 2)
    np.testing.assert_array_equal(photos[2], images[0][:, ::-1])
    width = images[0].shape[1]
    np.testing.assert_allclose(shapes[:2], gt)
    np.testing.assert_allclose(shapes[2:, list(JAW)], _hand_mirrored_jaw(gt[:, list(JAW)], width))


def test_has_shipped_model_names_the_committed_real_models_only():
    assert pipeline.has_shipped_model("real", pipeline.JAW_MODEL)
    assert pipeline.has_shipped_model("real", "cascade_stage1")
    assert not pipeline.has_shipped_model("real", "cascade_region_chin")


def test_jaw_spec_is_a_slim_region_resnet_of_the_cascade_without_random_mirroring():
    for profile in ("quick", "cpu", "release"):
        spec = pipeline.model_specs(profile)[pipeline.JAW_MODEL]
        assert spec.target == pipeline.JAW_TARGET and spec.augment.flip == 0.0
        assert spec.input_size == get_profile(profile).region_size
        assert spec.stages == pipeline.JAW_STAGES
    assert pipeline.JAW_MODEL in pipeline.APPROACH_MODELS["cascade"]
    assert pipeline.JAW_MODEL in pipeline.cascade_models(1)
    from fkd_utils.train import target_size
    assert target_size(pipeline.JAW_TARGET) == 18
    assert [pipeline.mirroring_in_training(n, "cpu") for n in (
        pipeline.JAW_MODEL, "cascade_stage1", "cascade_region_right_eye")] == [
        "left halves", "flipped", "not flipped"]


@pytest.fixture(scope="module")
def jaw_setup(untrained_weights):
    from skimage import data as skdata
    from fkd_utils import landmarker
    from fkd_utils.weights_io import import_model, read_weights_manifest
    manifest = read_weights_manifest(untrained_weights)
    models = {n: import_model(untrained_weights, n, manifest) for n in manifest["models"]}
    image = skdata.astronaut()
    faces, face_images, _ = landmarker.face_crops([image], [[[160.0, 40.0, 320.0, 230.0]]],
                                                  manifest)
    shape = pipeline.predict_cascade(models, faces, face_images, stages=1)[1][0]
    return models, faces, face_images, shape


def test_the_jaw_resnet_sees_a_mirrored_photo_as_the_mirror_image(jaw_setup):
    models, _, images, shape = jaw_setup
    jaw_model = models[pipeline.JAW_MODEL]
    jaw = pipeline.predict_jaw(jaw_model, images, shape)
    assert jaw.shape == (1, 17, 2) and np.isfinite(jaw).all()
    width = images[0].shape[1]
    mirrored = pipeline.predict_jaw(jaw_model, [np.ascontiguousarray(images[0][:, ::-1])],
                                    np.stack([pipeline.mirror_points(shape[0], width)]))
    np.testing.assert_allclose(mirrored, _hand_mirrored_jaw(jaw, width), atol=1e-3)
    moved = pipeline.predict_jaw(jaw_model, images, shape, x_bias=0.7)
    np.testing.assert_allclose(moved - jaw, np.broadcast_to([0.7, 0.0], jaw.shape), atol=1e-9)


def test_the_cascade_blends_the_jaw_resnet_into_the_jaw_only(jaw_setup):
    models, faces, images, _ = jaw_setup
    without = {n: m for n, m in models.items() if n != pipeline.JAW_MODEL}
    plain, _ = pipeline.predict_cascade(without, faces, images, stages=2)
    blended, _ = pipeline.predict_cascade(models, faces, images, stages=2)
    jaw = pipeline.predict_jaw(models[pipeline.JAW_MODEL], images, plain)
    rest = [i for i in range(68) if i not in JAW]
    np.testing.assert_allclose(blended[:, rest], plain[:, rest])
    want = (1 - pipeline.JAW_BLEND) * plain[:, list(JAW)] + pipeline.JAW_BLEND * jaw
    np.testing.assert_allclose(blended[:, list(JAW)], want, atol=1e-6)
    np.testing.assert_allclose(pipeline.blend_jaw(plain, jaw, 1.0)[:, list(JAW)], jaw)
    np.testing.assert_array_equal(pipeline.blend_jaw(plain, jaw, 0.0), plain)


def _region_models(models):
    return {r: models[n] for r, n in pipeline.CASCADE_REGIONS.items()}


def test_a_mirrored_read_is_the_plain_read_of_the_mirrored_photo(jaw_setup):
    models, _, images, shape = jaw_setup
    regions = _region_models(models)
    size = regions["nose"].input_shape[1]
    reads = pipeline.mirrored_reads(shape, images, pipeline.region_squares(shape), regions, size)
    width = images[0].shape[1]
    photo = np.ascontiguousarray(images[0][:, ::-1])
    mirrored_shape = np.stack([pipeline.mirror_points(shape[0], width)])
    plain, _ = pipeline.refine_with_regions(mirrored_shape, [photo],
                                            pipeline.region_squares(mirrored_shape), regions, size)
    inner = [i for i in range(68) if i not in JAW]
    # the left eye's ResNet read the right eye's mirrored crop: the mirror's own left eye
    np.testing.assert_allclose(reads[:, inner], pipeline.mirror_points(plain, width)[:, inner],
                               atol=1e-3)
    np.testing.assert_array_equal(reads[:, list(JAW)], shape[:, list(JAW)])


def test_flip_averages_the_two_reads_each_with_its_own_bias(jaw_setup):
    models, _, images, shape = jaw_setup
    regions, squares = _region_models(models), pipeline.region_squares(shape)
    size = regions["nose"].input_shape[1]
    plain, _ = pipeline.refine_with_regions(shape, images, squares, regions, size)
    reads = pipeline.mirrored_reads(shape, images, squares, regions, size)
    bias = {"nose": 1.0, pipeline.mirrored("nose"): 3.0}
    both, _ = pipeline.refine_with_regions(shape, images, squares, regions, size, bias, flip=True)
    want = (plain + reads) / 2.0
    nose = list(REGIONS["nose"])
    want[:, nose, 0] += (1.0 + 3.0) / 2.0
    np.testing.assert_allclose(both, want, atol=1e-9)
    # the cascade hands each region the bias of the ResNet that read it mirrored
    biases = pipeline.region_biases({pipeline.mirrored("cascade_region_left_eye"): 2.0})
    assert biases[pipeline.mirrored("right_eye")] == 2.0
    assert biases[pipeline.mirrored("left_eye")] is None


def test_release_eye_resnets_learn_from_mirror_images_too():
    for profile, wanted in (("quick", False), ("cpu", False), ("release", True)):
        specs = pipeline.model_specs(profile)
        for region in ("right_eye", "left_eye"):
            assert specs[pipeline.CASCADE_REGIONS[region]].mirror_copies is wanted
        assert not specs[pipeline.CASCADE_REGIONS["nose"]].mirror_copies
        assert not specs["region_left_eye"].mirror_copies   # the paper's stay as they were
    assert pipeline.mirroring_in_training("cascade_region_left_eye", "release") == "mirror images"


def test_a_stored_model_without_mirror_copies_does_not_pass_for_one_with_them(tmp_path):
    import json
    spec = pipeline.model_specs("release")["cascade_region_left_eye"]
    path = tmp_path / "cascade_region_left_eye.keras"
    without = {k: v for k, v in json.loads(json.dumps(spec.manifest())).items()
               if k != "mirror_copies"}
    path.with_suffix(".json").write_text(json.dumps({**without, "data_fingerprint": "f"}))
    with pytest.raises(DataError, match=r"other settings \(mirror_copies\)"):
        pipeline._check_stored(path, spec, "f")
    plain = replace(pipeline.model_specs("cpu")["cascade_region_left_eye"],
                    input_size=spec.input_size)
    pipeline._check_stored(path, plain, "f")   # off: older manifests pass
    # and a model trained with them does not pass for a spec without
    path.with_suffix(".json").write_text(json.dumps({**without, "mirror_copies": True,
                                                     "data_fingerprint": "f"}))
    pipeline._check_stored(path, spec, "f")
    with pytest.raises(DataError, match=r"other settings \(mirror_copies\)"):
        pipeline._check_stored(path, plain, "f")
    assert pipeline.model_specs("release")[pipeline.JAW_MODEL].learns_from_mirror_images
    assert spec.learns_from_mirror_images and not plain.learns_from_mirror_images
