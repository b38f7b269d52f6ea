"""Face crops and their cache (fkd_utils.preprocess), on a tiny synthetic 300-W-layout set.

Every test that may write a cache points ``FKD_HOME`` at its own temporary directory, so
nothing lands in the repository and cache hits are never borrowed from another test.
"""
import hashlib
import os
import shutil
import warnings

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from fkd_utils import crop, paths, preprocess, synthetic
from fkd_utils.markup import REGIONS

COUNTS = {"afw": 4, "helen/testset": 3, "300W/01_Indoor": 2}
IMAGE_SIZE = 64
CROP = 32


@pytest.fixture(scope="module")
def source_set(tmp_path_factory):
    """The tiny set, generated once; read-only (tests that change files use ``data``)."""
    return synthetic.generate(tmp_path_factory.mktemp("syn") / "300w", counts=COUNTS, seed=0,
                              image_size=IMAGE_SIZE)


@pytest.fixture
def data(source_set, tmp_path):
    """A private copy of the tiny set."""
    return shutil.copytree(source_set, tmp_path / "300w")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private FKD_HOME: every cache written by a test goes here."""
    root = tmp_path / "home"
    monkeypatch.setenv("FKD_HOME", str(root))
    return root


def _cache_files():
    folder = paths.processed_dir()
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def _tree_digest(root):
    """{relative path: (sha256, mtime_ns)} of every file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = (
                hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def _read_pts(path):
    """An independent .pts reader (1-based coordinates between the braces)."""
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    body = lines[lines.index("{") + 1:lines.index("}")]
    return np.array([[float(v) for v in ln.split()] for ln in body])


def _rewrite_pts(path, dx=1.5):
    """Move every point of a .pts file by ``dx`` pixels in x and bump its mtime."""
    pts = _read_pts(path) + [dx, 0.0]
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in pts)
    path.write_text(f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _official_boxes(data_dir, folder, field="bb_detector"):
    """{image name: box} read straight from the .mat file with scipy."""
    mat = scipy.io.loadmat(data_dir / "Bounding Boxes" / synthetic.box_file_name(folder))
    out = {}
    for entry in mat["bounding_boxes"].ravel():
        record = entry[0, 0]
        out[str(record["imgName"].ravel()[0])] = np.asarray(record[field], float).ravel()
    return out


# ------------------------------------------------------------------------- load_faces

def test_load_faces_shapes_and_exact_inverse(source_set, home):
    faces = preprocess.load_faces(source_set, "train", CROP)
    n = COUNTS["afw"]
    assert faces["images"].shape == (n, CROP, CROP, 3) and faces["images"].dtype == np.uint8
    assert faces["points"].shape == faces["crop_points"].shape == (n, 68, 2)
    assert faces["transforms"].shape == (n, 3) and faces["boxes"].shape == (n, 4)
    assert faces["ids"].shape == faces["subsets"].shape == faces["box_sources"].shape == (n,)
    assert list(faces["ids"]) == [f"afw/afw_{i:04d}.png" for i in range(1, n + 1)]
    assert set(faces["subsets"]) == {"afw"} and set(faces["box_sources"]) == {"bb_detector"}
    assert faces["images"].max() > 0

    # Points are the .pts files minus one (0-based pixel centres).
    for i, sample_id in enumerate(faces["ids"]):
        pts = _read_pts(source_set / sample_id.replace(".png", ".pts"))
        np.testing.assert_allclose(faces["points"][i], pts - 1.0, atol=1e-9)
    # Boxes are the official detector boxes.
    official = _official_boxes(source_set, "afw")
    for i, sample_id in enumerate(faces["ids"]):
        np.testing.assert_allclose(faces["boxes"][i], official[sample_id.split("/")[-1]])

    # The crop transform maps the points exactly, and back.
    np.testing.assert_allclose(crop.from_crop(faces["crop_points"], faces["transforms"]),
                               faces["points"], atol=1e-6)
    s, tx, ty = faces["transforms"].T
    np.testing.assert_allclose(faces["crop_points"][..., 0],
                               faces["points"][..., 0] * s[:, None] + tx[:, None], atol=1e-9)
    np.testing.assert_allclose(faces["crop_points"][..., 1],
                               faces["points"][..., 1] * s[:, None] + ty[:, None], atol=1e-9)
    # A detector box with a 20% margin keeps the face inside the crop.
    assert faces["crop_points"].min() > -0.5 and faces["crop_points"].max() < CROP - 0.5


def test_load_faces_other_splits(source_set, home):
    validation = preprocess.load_faces(source_set, "validation", CROP)
    test = preprocess.load_faces(source_set, "test", CROP)
    assert len(validation["ids"]) == 3 and set(validation["subsets"]) == {"helen"}
    assert len(test["ids"]) == 2 and set(test["subsets"]) == {"indoor"}


def test_second_call_hits_the_cache(source_set, home, monkeypatch):
    assert _cache_files() == []
    first = preprocess.load_faces(source_set, "train", CROP)
    files = _cache_files()
    assert len(files) == 1 and files[0].parent == home / "data" / "processed"
    assert files[0].name.startswith(f"faces-train-{CROP}-")

    def boom(*args, **kwargs):
        raise AssertionError("read_samples called on a cache hit")

    monkeypatch.setattr(preprocess, "read_samples", boom)
    second = preprocess.load_faces(source_set, "train", CROP)
    assert set(second) == set(first)
    for key in first:
        np.testing.assert_array_equal(second[key], first[key])
        assert second[key].dtype == first[key].dtype
    assert _cache_files() == files
    # cache=False always rebuilds and writes nothing.
    with pytest.raises(AssertionError, match="read_samples"):
        preprocess.load_faces(source_set, "train", CROP, cache=False)


def test_cache_false_writes_nothing(source_set, home):
    faces = preprocess.load_faces(source_set, "train", CROP, cache=False)
    assert len(faces["ids"]) == COUNTS["afw"]
    assert _cache_files() == []


def test_settings_get_their_own_cache_files(source_set, home):
    a = preprocess.load_faces(source_set, "train", CROP)
    b = preprocess.load_faces(source_set, "train", CROP + 8)
    assert len(_cache_files()) == 2
    assert b["images"].shape[1:3] == (CROP + 8, CROP + 8)
    np.testing.assert_allclose(b["points"], a["points"])
    np.testing.assert_allclose(crop.from_crop(b["crop_points"], b["transforms"]), b["points"],
                               atol=1e-6)
    preprocess.load_faces(source_set, "train", CROP, margin=0.3)
    truth = preprocess.load_faces(source_set, "train", CROP, box_source="bb_ground_truth")
    assert len(_cache_files()) == 4
    assert set(truth["box_sources"]) == {"bb_ground_truth"}
    assert not np.allclose(truth["boxes"], a["boxes"])


def test_changed_pts_file_invalidates_the_cache(data, home):
    before = preprocess.load_faces(data, "train", CROP)
    _rewrite_pts(data / "afw" / "afw_0002.pts", dx=1.5)
    after = preprocess.load_faces(data, "train", CROP)
    assert len(_cache_files()) == 2
    np.testing.assert_allclose(after["points"][1], before["points"][1] + [1.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(after["points"][[0, 2, 3]], before["points"][[0, 2, 3]])


def test_changed_box_file_invalidates_the_cache(data, home):
    before = preprocess.load_faces(data, "train", CROP)
    assert set(before["box_sources"]) == {"bb_detector"}
    (data / "Bounding Boxes" / synthetic.box_file_name("afw")).unlink()
    with pytest.warns(UserWarning, match="no official box file"):
        after = preprocess.load_faces(data, "train", CROP)
    assert set(after["box_sources"]) == {"points"}
    assert len(_cache_files()) == 2


def test_raw_data_is_never_modified(data, home):
    digest = _tree_digest(data)
    for split in ("train", "validation", "test"):
        preprocess.load_faces(data, split, CROP)
    preprocess.load_faces(data, "train", CROP)                    # cache hit
    preprocess.load_originals(data, "train")
    shutil.rmtree(data / "Bounding Boxes")
    digest = {k: v for k, v in digest.items() if not k.startswith("Bounding Boxes/")}
    with pytest.warns(UserWarning):
        preprocess.load_faces(data, "train", CROP)
    assert _tree_digest(data) == digest
    assert not any(p.suffix == ".npz" for p in data.rglob("*"))


# ------------------------------------------------------------------------- face_boxes

def test_face_boxes_use_the_official_files(source_set):
    samples = preprocess.split_samples(source_set, "validation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, sources = preprocess.face_boxes(samples, source_set)
        truth, truth_sources = preprocess.face_boxes(samples, source_set, "bb_ground_truth")
    official = _official_boxes(source_set, "helen/testset")
    official_truth = _official_boxes(source_set, "helen/testset", "bb_ground_truth")
    for i, s in enumerate(samples):
        np.testing.assert_allclose(boxes[i], official[s.image_path.name])
        np.testing.assert_allclose(truth[i], official_truth[s.image_path.name])
        # The synthetic ground-truth box is the tight box of the .pts points (1-based).
        pts = _read_pts(s.pts_path)
        np.testing.assert_allclose(truth[i], [*pts.min(0), *pts.max(0)], atol=1e-9)
    assert list(sources) == ["bb_detector"] * len(samples)
    assert list(truth_sources) == ["bb_ground_truth"] * len(samples)
    with pytest.raises(ValueError, match="box_source"):
        preprocess.face_boxes(samples, source_set, "bb_whatever")


def test_face_boxes_fall_back_to_the_points_box(data):
    shutil.rmtree(data / "Bounding Boxes")
    samples = preprocess.split_samples(data, "train")
    with pytest.warns(UserWarning, match=f"{len(samples)} of {len(samples)} samples"):
        boxes, sources = preprocess.face_boxes(samples, data)
    assert list(sources) == ["points"] * len(samples)
    for i, s in enumerate(samples):
        pts = _read_pts(s.pts_path)                     # 1-based, like the official boxes
        np.testing.assert_allclose(boxes[i], [*pts.min(0), *pts.max(0)], atol=1e-9)
    # Given 0-based points, the fallback box is still 1-based.
    points = np.stack([_read_pts(s.pts_path) - 1.0 for s in samples])
    with pytest.warns(UserWarning):
        from_points, _ = preprocess.face_boxes(samples, data, points=points)
    np.testing.assert_allclose(from_points, boxes, atol=1e-9)


def test_face_boxes_partial_fallback(data, home):
    (data / "Bounding Boxes" / synthetic.box_file_name("helen/testset")).unlink()
    samples = preprocess.split_samples(data, "train") + \
        preprocess.split_samples(data, "validation")
    with pytest.warns(UserWarning, match=f"3 of {len(samples)} samples"):
        _, sources = preprocess.face_boxes(samples, data)
    assert list(sources) == ["bb_detector"] * 4 + ["points"] * 3
    with pytest.warns(UserWarning, match="no official box file"):
        faces = preprocess.load_faces(data, "validation", CROP)
    assert list(faces["box_sources"]) == ["points"] * 3
    np.testing.assert_allclose(crop.from_crop(faces["crop_points"], faces["transforms"]),
                               faces["points"], atol=1e-6)


# ------------------------------------------------------------------------ crop_regions

@pytest.fixture(scope="module")
def originals(source_set):
    ids, images, points = preprocess.load_originals(source_set, "train")
    return images, points


@pytest.mark.parametrize("region", list(REGIONS))
def test_crop_regions_without_jitter_hold_the_region(originals, region):
    images, shapes = originals
    n, size = len(images), 24
    crops, transforms, source, clipped = preprocess.crop_regions(images, shapes, region, size)
    assert crops.shape == (n, size, size, 3) and crops.dtype == np.uint8
    assert transforms.shape == (n, 3)
    np.testing.assert_array_equal(source, np.arange(n))
    assert clipped == 0
    idx = list(REGIONS[region])
    for t, i in zip(transforms, source):
        inside = crop.to_crop(shapes[i][idx], t)
        assert inside.min() >= -0.5 and inside.max() <= size - 0.5, (region, i)
        back = crop.from_crop(inside, t)
        np.testing.assert_allclose(back, shapes[i][idx], atol=1e-9)


def test_crop_regions_copies_and_jitter(originals):
    images, shapes = originals
    n, size, copies = len(images), 20, 3
    crops, transforms, source, clipped = preprocess.crop_regions(
        images, shapes, "mouth", size, jitter=0.1, seed=5, copies=copies)
    assert crops.shape == (copies * n, size, size, 3) and transforms.shape == (copies * n, 3)
    np.testing.assert_array_equal(source, np.tile(np.arange(n), copies))
    assert isinstance(clipped, int) and 0 <= clipped <= copies * n
    # Jitter moves each copy differently; the same seed repeats exactly.
    assert not np.allclose(transforms[:n], transforms[n:2 * n])
    again = preprocess.crop_regions(images, shapes, "mouth", size, jitter=0.1, seed=5,
                                    copies=copies)
    np.testing.assert_array_equal(again[0], crops)
    np.testing.assert_array_equal(again[1], transforms)
    # Without jitter all copies are the same crop.
    plain = preprocess.crop_regions(images, shapes, "mouth", size, copies=2)
    np.testing.assert_array_equal(plain[0][:n], plain[0][n:])
    np.testing.assert_array_equal(plain[2], np.tile(np.arange(n), 2))


# -------------------------------------------------------------------- data_fingerprint

def test_data_fingerprint_tracks_the_files(data):
    first = preprocess.data_fingerprint(data)
    assert first == preprocess.data_fingerprint(data)
    assert isinstance(first, str) and len(first) == 20
    _rewrite_pts(data / "helen" / "testset" / sorted(
        p.name for p in (data / "helen" / "testset").glob("*.pts"))[0])
    second = preprocess.data_fingerprint(data)
    assert second != first
    image = data / "300W" / "01_Indoor" / sorted(
        p.name for p in (data / "300W" / "01_Indoor").glob("*.png"))[0]
    image.write_bytes(image.read_bytes() + b"\0")
    assert preprocess.data_fingerprint(data) not in (first, second)


def _touch_everything(root, seconds=60):
    for path in Path(root).rglob("*"):
        if path.is_file():
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def test_data_fingerprint_ignores_modification_times(data, home):
    # a fresh copy or re-mount of the same data keeps its models and its crop cache
    first = preprocess.data_fingerprint(data)
    preprocess.load_faces(data, "train", CROP)
    _touch_everything(data)
    assert preprocess.data_fingerprint(data) == first
    preprocess.load_faces(data, "train", CROP)
    assert len(_cache_files()) == 1


def test_data_fingerprint_tracks_the_box_files(data):
    first = preprocess.data_fingerprint(data)
    box_file = data / "Bounding Boxes" / synthetic.box_file_name("afw")
    mat = scipy.io.loadmat(box_file)
    mat["bounding_boxes"][0, 0][0, 0]["bb_detector"][0, 0] += 3.0
    scipy.io.savemat(box_file, {"bounding_boxes": mat["bounding_boxes"]})
    assert preprocess.data_fingerprint(data) != first


def test_data_fingerprint_depends_on_the_place_not_only_the_content(source_set, data):
    # Same files, another directory: a different fingerprint (it names models to their data).
    assert preprocess.data_fingerprint(source_set) != preprocess.data_fingerprint(data)
