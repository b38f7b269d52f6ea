"""The synthetic 300-W-like set (fkd_utils.synthetic): layout, determinism, exact landmarks."""
import numpy as np
import pytest

from fkd_utils import synthetic
from fkd_utils.io import read_boxes, read_image, read_pts
from fkd_utils.markup import LEFT_EYE, N_POINTS, RIGHT_EYE

SIZE = 128
# One or two faces per folder keep the whole file at a few seconds.
SMALL = {folder: 1 for folder in synthetic.FOLDERS} | {"afw": 2, "ibug": 2}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "set", SMALL, seed=3,
                              image_size=SIZE)


def _luma(image, xy):
    """Brightness of the pixel under a 0-based point (x, y)."""
    x, y = np.round(xy).astype(int)
    return float(image[y, x].astype(np.float64) @ [0.299, 0.587, 0.114])


def _clean_faces(n, size=160, seed=11):
    rng = np.random.default_rng(seed)
    return [synthetic.render_face(rng, size, occluders=False, noise=False) for _ in range(n)]


# ---------------------------------------------------------------- constants and API

def test_counts_match_the_paper_and_the_quick_profile():
    def split_total(counts, split):
        return sum(counts[f] for f in synthetic.SPLITS[split])

    paper = synthetic.PAPER_COUNTS
    assert [split_total(paper, s) for s in ("train", "validation", "test")] == [3148, 689, 600]
    assert paper["afw"] == 337 and paper["helen/trainset"] == 2000
    assert paper["ibug"] == 135 and paper["300W/02_Outdoor"] == 300
    quick = synthetic.DEFAULT_COUNTS
    assert set(quick) == set(synthetic.FOLDERS) == set(paper)
    assert 150 <= sum(quick.values()) <= 600
    assert split_total(quick, "train") > split_total(quick, "validation") > 0


def test_mean_face_shape_is_a_unit_frame_template():
    shape = synthetic.mean_face_shape()
    assert shape.shape == (N_POINTS, 2)
    np.testing.assert_allclose(shape[[0, 16], 0], [-0.5, 0.5])
    # Subject's right eye on the image's left; chin lowest; brows above the eyes.
    assert shape[list(RIGHT_EYE), 0].max() < 0 < shape[list(LEFT_EYE), 0].min()
    assert shape[:, 1].argmax() == 8
    assert shape[17:27, 1].max() < shape[36:48, 1].min()


def test_render_face_returns_an_image_and_points_inside_it():
    rng = np.random.default_rng(0)
    for _ in range(5):
        image, points = synthetic.render_face(rng, 96)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert points.shape == (N_POINTS, 2)
        assert points.min() >= 0 and points.max() <= 95


def test_canvas_draws_at_0_based_pixel_centres():
    # The supersampled canvas must not shift shapes: a disk's centroid is its centre.
    canvas = synthetic._Canvas(32)
    canvas.paint(canvas.disk((10.3, 20.7), 3.0), [255, 255, 255])
    canvas.paint(canvas.polygon([[2, 2], [6, 2], [6, 5], [2, 5]]), [0, 0, 255])
    image = canvas.image()
    white = image[..., 0]
    ys, xs = np.mgrid[:32, :32]
    centroid = np.array([(white * xs).sum(), (white * ys).sum()]) / white.sum()
    np.testing.assert_allclose(centroid, [10.3, 20.7], atol=0.05)
    blue = image[..., 2] - image[..., 0]
    assert blue[2:6, 2:7].min() > 0 and blue[2:6, 2:7].sum() == blue.sum()


# ---------------------------------------------------------------- the written set

def test_pts_files_hold_the_rendered_points_plus_one(small_set):
    image, points = synthetic.render_face(synthetic.face_rng(3, "afw", 0), SIZE)
    stem = small_set / "afw" / synthetic.image_stem("afw", 0)
    np.testing.assert_allclose(read_pts(stem.with_suffix(".pts")), points + 1, atol=5e-4)
    np.testing.assert_array_equal(read_image(stem.with_suffix(".png")), image)


def test_layout_counts_and_points(small_set):
    for folder in synthetic.FOLDERS:
        pngs = sorted((small_set / folder).glob("*.png"))
        assert len(pngs) == SMALL[folder], folder
        for png in pngs:
            pts = read_pts(png.with_suffix(".pts"))           # 1-based
            assert pts.shape == (N_POINTS, 2)
            height, width = read_image(png).shape[:2]
            assert (height, width) == (SIZE, SIZE)
            assert pts.min() >= 1 and pts[:, 0].max() <= width and pts[:, 1].max() <= height
    readme = (small_set / "README.md").read_text()
    assert "synthetic" in readme and "seed=3" in readme and "say nothing about real" in readme


def test_box_files_read_back_with_the_project_reader(small_set):
    for folder in synthetic.FOLDERS:
        boxes = read_boxes(small_set / synthetic.BOXES_DIR / synthetic.box_file_name(folder))
        names = sorted(p.name for p in (small_set / folder).glob("*.png"))
        assert sorted(boxes) == names
        for name, entry in boxes.items():
            pts = read_pts((small_set / folder / name).with_suffix(".pts"))
            tight = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
            np.testing.assert_allclose(entry["bb_ground_truth"], tight, atol=1e-9)
            det = entry["bb_detector"]
            assert det[2] > det[0] and det[3] > det[1]
            # A simulated detector: overlaps the landmark box, but is not it.
            assert not np.allclose(det, tight)
            assert det[0] < tight[2] and det[2] > tight[0]


def test_box_file_names_follow_300w():
    names = {synthetic.box_file_name(f) for f in synthetic.FOLDERS}
    assert names == {
        "bounding_boxes_afw.mat", "bounding_boxes_helen_trainset.mat",
        "bounding_boxes_lfpw_trainset.mat", "bounding_boxes_helen_testset.mat",
        "bounding_boxes_lfpw_testset.mat", "bounding_boxes_ibug.mat",
        "bounding_boxes_300W_01_Indoor.mat", "bounding_boxes_300W_02_Outdoor.mat"}


def test_detector_boxes_are_larger_and_lower_on_average():
    rng_boxes = [synthetic._detector_box(np.random.default_rng(i),
                                         np.array([50.0, 60.0, 150.0, 170.0]), 1000)
                 for i in range(200)]
    det = np.array(rng_boxes)
    assert np.mean(det[:, 2] - det[:, 0]) > 100 and np.mean(det[:, 3] - det[:, 1]) > 110
    assert np.mean(det[:, 1] + det[:, 3]) / 2 > 115            # centre below the truth's


# ---------------------------------------------------------------- determinism and safety

def test_same_seed_same_files_other_seed_differs(tmp_path, small_set):
    again = synthetic.generate(tmp_path / "again", SMALL, seed=3, image_size=SIZE)
    other = synthetic.generate(tmp_path / "other", SMALL, seed=4, image_size=SIZE)
    for folder in ("afw", "ibug"):
        for png in sorted((small_set / folder).glob("*.png")):
            twin = again / folder / png.name
            assert png.with_suffix(".pts").read_text() == twin.with_suffix(".pts").read_text()
            np.testing.assert_array_equal(read_image(png), read_image(twin))
            different = other / folder / png.name
            assert png.with_suffix(".pts").read_text() != different.with_suffix(".pts").read_text()
            assert not np.array_equal(read_image(png), read_image(different))


def test_a_face_does_not_depend_on_the_other_counts(tmp_path, small_set):
    bigger = dict(SMALL, afw=3, ibug=0)
    out = synthetic.generate(tmp_path / "bigger", bigger, seed=3, image_size=SIZE)
    name = sorted((small_set / "afw").glob("*.pts"))[1].name
    assert (out / "afw" / name).read_text() == (small_set / "afw" / name).read_text()


def test_refuses_a_non_empty_dir_and_overwrite_replaces_a_synthetic_set(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="foreign"):
        synthetic.generate(foreign, {"afw": 1}, image_size=64)
    # overwrite deletes the directory, so it only ever replaces a set written here.
    with pytest.raises(FileExistsError, match="not a synthetic set"):
        synthetic.generate(foreign, {"afw": 1}, image_size=64, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "mine"

    out = synthetic.generate(tmp_path / "set", {"afw": 2}, image_size=64)
    with pytest.raises(FileExistsError):
        synthetic.generate(out, {"afw": 1}, image_size=64)
    synthetic.generate(out, {"afw": 1}, seed=1, image_size=64, overwrite=True)
    assert len(list((out / "afw").glob("*.png"))) == 1
    assert "seed=1" in (out / "README.md").read_text()
    # No temporary sibling is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "set"]


def test_an_empty_existing_dir_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    out = synthetic.generate(tmp_path / "empty", {"ibug": 1}, image_size=64)
    assert len(list((out / "ibug").glob("*.pts"))) == 1


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown folder"):
        synthetic.generate(tmp_path / "x", {"helen": 3})
    with pytest.raises(ValueError, match="non-negative"):
        synthetic.generate(tmp_path / "x", {"afw": -1})
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- landmarks on features

def test_pupils_are_darker_than_the_cheek():
    pupil, cheek = [], []
    for image, pts in _clean_faces(12):
        for eye, jaw in ((RIGHT_EYE, 3), (LEFT_EYE, 13)):
            centre = pts[list(eye)].mean(axis=0)
            pupil.append(_luma(image, centre))
            cheek.append(_luma(image, (centre + pts[jaw]) / 2))
    pupil, cheek = np.array(pupil), np.array(cheek)
    assert pupil.mean() < 0.5 * cheek.mean()
    assert np.mean(pupil < cheek) > 0.9


def test_sclera_next_to_the_eye_corners_is_bright():
    sclera, pupil, cheek = [], [], []
    for image, pts in _clean_faces(12):
        for eye, jaw in ((RIGHT_EYE, 3), (LEFT_EYE, 13)):
            e = pts[list(eye)]
            centre = e.mean(axis=0)
            pupil.append(_luma(image, centre))
            cheek.append(_luma(image, (centre + pts[jaw]) / 2))
            for corner in (e[0], e[3]):
                sclera.append(_luma(image, corner + 0.3 * (centre - corner)))
    assert np.mean(sclera) > np.mean(cheek) + 30
    assert np.mean(sclera) > np.mean(pupil) + 100


def test_an_open_mouth_is_dark_inside():
    inside, lips = [], []
    for image, pts in _clean_faces(40):
        if np.linalg.norm(pts[66] - pts[62]) < 4:                # closed or barely open
            continue
        inside.append(_luma(image, (pts[62] + pts[66]) / 2 + 0.2 * (pts[66] - pts[62])))
        lips.append(_luma(image, (pts[57] + pts[66]) / 2))        # the lower lip
    assert len(inside) >= 5
    assert np.mean(inside) < 0.6 * np.mean(lips)


def test_brows_are_darker_than_the_forehead_above_them():
    brow, skin = [], []
    for image, pts in _clean_faces(12):
        for i, eye in ((19, 37), (24, 44)):
            brow.append(_luma(image, pts[i]))
            skin.append(_luma(image, pts[i] + 0.4 * (pts[eye] - pts[i])))  # between brow and eye
    assert np.mean(brow) < 0.75 * np.mean(skin)
