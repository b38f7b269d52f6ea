"""Keypoint-aware augmentation (fkd_utils.augment), checked against independent references.

References used here are written out in numpy (mirror x -> W - 1 - x, rotation about the
crop centre (S - 1) / 2, ``image[:, ::-1]``), and the key consistency test measures where
the pixels went (the intensity-weighted centroid of a small blob) and compares it with where
the keypoint went.
"""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fkd_utils import augment as A  # noqa: E402
from fkd_utils.markup import LEFT_EYE, MIRROR, N_POINTS, RIGHT_EYE  # noqa: E402
from fkd_utils.synthetic import render_face  # noqa: E402

S = 48                      # side of the test crops
C = (S - 1) / 2.0           # crop centre in 0-based pixel centres
GEOMETRY_ONLY = A.AugmentConfig(brightness=0.0, contrast=0.0)


def _np(x):
    return np.asarray(x, dtype=np.float64)


def _random_points(seed=0, lo=8.0, hi=S - 9.0):
    return np.random.default_rng(seed).uniform(lo, hi, (N_POINTS, 2)).astype(np.float32)


def _smooth_image(seed=0, size=S):
    """A smooth random RGB image in [0, 1] (bilinear resampling is nearly exact on it)."""
    from scipy import ndimage
    noise = np.random.default_rng(seed).random((size, size, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(3, 3, 0), mode="wrap")
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return smooth.astype(np.float32)


def _blob(xy, sigma=1.5, size=S):
    yy, xx = np.mgrid[0:size, 0:size]
    g = np.exp(-((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat(g[..., None], 3, axis=-1).astype(np.float32)


def _centroid(image):
    """Intensity-weighted centroid (x, y) of an image, 0-based pixel centres."""
    w = _np(image).sum(axis=-1)
    yy, xx = np.mgrid[0:w.shape[0], 0:w.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def _seed(a, b=0):
    return tf.constant([a, b], dtype=tf.int64)


# ------------------------------------------------------------------------------ flips

def test_flip_matches_numpy_and_mirror_permutation():
    image, points = _smooth_image(1), _random_points(1)
    out_image, out_points = A.flip(image, points)
    np.testing.assert_allclose(_np(out_image), image[:, ::-1], atol=1e-6)
    expected = np.empty_like(_np(points))
    for i in range(N_POINTS):                      # flipped[MIRROR[i]] == mirror(original[i])
        expected[MIRROR[i]] = (S - 1 - points[i, 0], points[i, 1])
    np.testing.assert_allclose(_np(out_points), expected, atol=1e-4)


def test_flip_twice_is_identity():
    image, points = _smooth_image(2), _random_points(2)
    once = A.flip(image, points)
    twice = A.flip(*once)
    np.testing.assert_allclose(_np(twice[0]), image, atol=1e-4)
    np.testing.assert_allclose(_np(twice[1]), points, atol=1e-4)


def test_mirror_permutation_is_an_involution_pairing_left_and_right():
    mirror = np.array(MIRROR)
    assert sorted(mirror.tolist()) == list(range(N_POINTS))
    np.testing.assert_array_equal(mirror[mirror], np.arange(N_POINTS))
    # iBUG eyes: 36 outer / 39 inner corner of the right eye, 42 inner / 45 outer of the left.
    assert [MIRROR[i] for i in RIGHT_EYE] == [45, 44, 43, 42, 47, 46]
    assert [MIRROR[i] for i in (0, 8, 16, 27, 30, 33, 48, 51, 54, 57, 62, 66)] == \
        [16, 8, 0, 27, 30, 33, 54, 51, 48, 57, 62, 66]


def test_flip_of_a_face_keeps_the_subjects_eyes_on_their_side():
    image, points = render_face(np.random.default_rng(0), 64)
    image = image.astype(np.float32) / 255.0
    right, left = list(RIGHT_EYE), list(LEFT_EYE)
    # A frontal face: the subject's right eye (36-41) is on the image's left.
    assert points[left, 0].mean() > points[right, 0].mean()
    assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]
    out_image, out_points = A.flip(image, points)
    out_points = _np(out_points)
    np.testing.assert_allclose(_np(out_image), image[:, ::-1], atol=1e-6)
    assert out_points[left, 0].mean() > out_points[right, 0].mean()
    assert out_points[36, 0] < out_points[39, 0] < out_points[42, 0] < out_points[45, 0]
    assert out_points[0, 0] < out_points[16, 0]          # jaw still starts on image-left
    # The new left eye is the old right eye, mirrored: inner corner 42 <- 39, outer 45 <- 36.
    old_right_as_left = [39, 38, 37, 36, 41, 40]
    expected = np.stack([63 - points[old_right_as_left, 0], points[old_right_as_left, 1]], 1)
    np.testing.assert_allclose(out_points[42:48], expected, atol=1e-4)


# ---------------------------------------------------------------- geometric transforms

def _rot_ref(points, angle_deg):
    a = np.deg2rad(angle_deg)
    d = _np(points) - C
    return np.stack([np.cos(a) * d[:, 0] - np.sin(a) * d[:, 1],
                     np.sin(a) * d[:, 0] + np.cos(a) * d[:, 1]], 1) + C


def test_rotation_matches_numpy_and_turns_clockwise_on_screen():
    points = _random_points(3)
    _, out = A.rotate(_smooth_image(3), points, 25.0)
    np.testing.assert_allclose(_np(out), _rot_ref(points, 25.0), atol=1e-3)
    # +90 degrees with y pointing down: a point right of the centre goes below it.
    probe = np.tile([[C + 10.0, C]], (N_POINTS, 1)).astype(np.float32)
    _, out = A.rotate(_smooth_image(3), probe, 90.0)
    np.testing.assert_allclose(_np(out)[0], [C, C + 10.0], atol=1e-4)


@pytest.mark.parametrize("angle", [7.0, -30.0])
def test_rotation_then_inverse_returns_points_and_centre_pixels(angle):
    image, points = _smooth_image(4), _random_points(4)
    there = A.rotate(image, points, angle)
    back_image, back_points = A.rotate(*there, -angle)
    np.testing.assert_allclose(_np(back_points), points, atol=1e-3)
    yy, xx = np.mgrid[0:S, 0:S]
    centre = (xx - C) ** 2 + (yy - C) ** 2 < (0.3 * S) ** 2
    err = np.abs(_np(back_image) - image)[centre]
    assert err.max() < 0.03, err.max()
    assert err.mean() < 0.005, err.mean()


def test_shear_matches_numpy():
    points = _random_points(5)
    _, out = A.shear(_smooth_image(5), points, 0.2)
    expected = np.stack([points[:, 0] + 0.2 * (points[:, 1] - C), points[:, 1]], 1)
    np.testing.assert_allclose(_np(out), expected, atol=1e-4)


def test_scale_shift_matches_numpy_and_inverts():
    image, points = _smooth_image(6), _random_points(6)
    scale, shift = 1.25, np.array([3.0, -2.5])
    out_image, out_points = A.scale_shift(image, points, scale, tuple(shift))
    np.testing.assert_allclose(_np(out_points), scale * (points - C) + C + shift, atol=1e-4)
    back_image, back_points = A.scale_shift(out_image, out_points, 1.0 / scale,
                                            tuple(-shift / scale))
    np.testing.assert_allclose(_np(back_points), points, atol=1e-3)
    inner = slice(S // 4, 3 * S // 4)
    assert np.abs(_np(back_image) - image)[inner, inner].max() < 0.03


def test_identity_maps_change_nothing():
    image, points = _smooth_image(7), _random_points(7)
    for out_image, out_points in (A.rotate(image, points, 0.0), A.shear(image, points, 0.0),
                                  A.scale_shift(image, points)):
        np.testing.assert_allclose(_np(out_image), image, atol=1e-5)
        np.testing.assert_allclose(_np(out_points), points, atol=1e-5)


# ------------------------------------------------------------ points follow the pixels

BLOB_AT = np.array([C + 7.0, C - 5.5])          # off-centre, not on the pixel grid
TRANSFORMS = {
    "rotate+13": lambda i, p: A.rotate(i, p, 13.0),
    "rotate-90": lambda i, p: A.rotate(i, p, -90.0),
    "shear": lambda i, p: A.shear(i, p, 0.15),
    "shear-neg": lambda i, p: A.shear(i, p, -0.1),
    "scale_shift": lambda i, p: A.scale_shift(i, p, 1.15, (2.3, -1.7)),
    "zoom_out": lambda i, p: A.scale_shift(i, p, 0.85, (-3.0, 1.0)),
    "flip": A.flip,
}


def _blob_problem(k=36):
    """A blob image at BLOB_AT, with keypoint ``k`` on it and the others elsewhere."""
    points = _random_points(8, 20, 28)
    points[k] = BLOB_AT
    return _blob(BLOB_AT), points


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_points_follow_pixels(name):
    k = 36
    image, points = _blob_problem(k)
    assert np.allclose(_centroid(image), BLOB_AT, atol=1e-3)
    out_image, out_points = TRANSFORMS[name](image, points)
    target = MIRROR[k] if name == "flip" else k
    np.testing.assert_allclose(_centroid(out_image), _np(out_points)[target], atol=0.3)


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_points_follow_pixels_under_random_augment(flip):
    k = 36
    image, points = _blob_problem(k)
    config = A.AugmentConfig(flip=flip, brightness=0.0, contrast=0.0)
    target = MIRROR[k] if flip else k
    for s in range(6):
        out_image, out_points = A.random_augment(image, points, _seed(s, 11), config)
        np.testing.assert_allclose(_centroid(out_image), _np(out_points)[target], atol=0.3,
                                   err_msg=f"seed {s}")


# ------------------------------------------------------------------ random parameters

def test_random_augment_is_a_pure_function_of_its_seed():
    image, points = _smooth_image(9), _random_points(9)
    a = A.random_augment(image, points, _seed(5, 1))
    b = A.random_augment(image, points, _seed(5, 1))
    c = A.random_augment(image, points, _seed(6, 1))
    np.testing.assert_array_equal(_np(a[0]), _np(b[0]))
    np.testing.assert_array_equal(_np(a[1]), _np(b[1]))
    assert not np.allclose(_np(a[1]), _np(c[1]), atol=1e-3)
    assert not np.allclose(_np(a[0]), _np(c[0]), atol=1e-3)


def test_random_parameters_stay_within_the_config():
    image, points = _smooth_image(10), _random_points(10)
    d0 = points[1] - points[0]
    angle0 = np.arctan2(d0[1], d0[0])
    rot = A.AugmentConfig(15.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    move = A.AugmentConfig(0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0)
    zoom = A.AugmentConfig(0.0, 0.0, 0.08, 0.0, 0.0, 0.0, 0.0)
    angles, shifts, scales = [], [], []
    for s in range(12):
        p = _np(A.random_augment(image, points, _seed(s, 2), rot)[1])
        d = p[1] - p[0]
        angles.append(np.rad2deg(np.angle(np.exp(1j * (np.arctan2(d[1], d[0]) - angle0)))))
        p = _np(A.random_augment(image, points, _seed(s, 3), move)[1])
        shifts.append(p - points)
        p = _np(A.random_augment(image, points, _seed(s, 4), zoom)[1])
        scales.append(np.linalg.norm(p[1] - p[0]) / np.linalg.norm(d0))
    angles, shifts, scales = np.array(angles), np.array(shifts), np.array(scales)
    assert np.all(np.abs(angles) <= 15.0 + 1e-3) and np.ptp(angles) > 1.0
    # A translation moves every point by the same vector, at most 5% of the side.
    assert np.allclose(shifts, shifts[:, :1], atol=1e-4)
    assert np.all(np.abs(shifts) <= 0.05 * S + 1e-4) and np.ptp(shifts) > 0.1
    # Log-scale is a normal truncated at 2 std.
    assert np.all(np.abs(np.log(scales)) <= 2 * 0.08 + 1e-4) and np.ptp(scales) > 0.01


def test_flip_probability():
    image, points = _smooth_image(11), _random_points(11)
    only_flip = A.AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0)
    flipped = 0
    for s in range(60):
        out = _np(A.random_augment(image, points, _seed(s, 5), only_flip)[1])
        if not np.allclose(out, points, atol=1e-4):
            mirrored = np.empty_like(out)
            mirrored[list(MIRROR)] = np.stack([S - 1 - points[:, 0], points[:, 1]], 1)
            np.testing.assert_allclose(out, mirrored, atol=1e-4)
            flipped += 1
    assert 15 <= flipped <= 45, flipped


# ------------------------------------------------------------------------- photometric

def test_brightness_contrast_formula_and_range():
    image = _smooth_image(12)
    image = 0.3 + 0.4 * image                      # away from the clip limits
    mean = image.mean()
    out = _np(A.brightness_contrast(image, 0.05, 1.2))
    np.testing.assert_allclose(out, (image - mean) * 1.2 + mean + 0.05, atol=1e-5)
    for delta, contrast in [(0.5, 3.0), (-0.5, 3.0), (0.9, 1.0), (-0.9, 0.0), (0.2, 0.75)]:
        out = _np(A.brightness_contrast(_smooth_image(13), delta, contrast))
        assert out.min() >= 0.0 and out.max() <= 1.0
    extreme = A.AugmentConfig(brightness=0.9, contrast=0.9)
    for s in range(4):
        out = _np(A.random_augment(_smooth_image(14), _random_points(14), _seed(s, 6),
                                   extreme)[0])
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_no_augment_returns_inputs():
    image, points = _smooth_image(15), _random_points(15).astype(np.float64)
    for s in range(3):
        out_image, out_points = A.random_augment(image, points, _seed(s, 7), A.NO_AUGMENT)
        np.testing.assert_allclose(_np(out_image), image, atol=1e-5)
        np.testing.assert_allclose(_np(out_points), points, atol=1e-4)


def test_config_to_dict():
    assert A.AugmentConfig().to_dict()["rotation"] == 15.0
    assert set(A.NO_AUGMENT.to_dict().values()) == {0.0}


# ---------------------------------------------------------------------------- tf.data

N_DS = 5


def _dataset(dtype=np.float64):
    images = np.stack([_smooth_image(20 + i, 32) for i in range(N_DS)])
    points = np.stack([_random_points(20 + i, 6, 25) for i in range(N_DS)]).astype(dtype)
    return tf.data.Dataset.from_tensor_slices((images, points)), images, points


def _pass(ds):
    pairs = [(_np(i), _np(p)) for i, p in ds]
    return np.stack([i for i, _ in pairs]), np.stack([p for _, p in pairs])


def test_map_with_autotune_on_float64_points():
    ds, images, points = _dataset(np.float64)
    seeds = tf.data.Dataset.range(N_DS).map(lambda i: tf.stack([i, tf.constant(99, tf.int64)]))
    mapped = tf.data.Dataset.zip((ds, seeds)).map(
        lambda pair, s: A.random_augment(pair[0], pair[1], s, GEOMETRY_ONLY),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    out_images, out_points = _pass(mapped)
    assert out_images.shape == images.shape and out_points.shape == points.shape
    assert mapped.element_spec[1].dtype == tf.float32
    for i in range(N_DS):          # graph mode inside map == eager call with the same seed
        ref_image, ref_points = A.random_augment(images[i], points[i], _seed(i, 99),
                                                 GEOMETRY_ONLY)
        np.testing.assert_allclose(out_images[i], _np(ref_image), atol=1e-5)
        np.testing.assert_allclose(out_points[i], _np(ref_points), atol=1e-4)


def test_augment_dataset_repeats_under_a_seed_and_differs_between_epochs():
    ds, images, points = _dataset(np.float64)
    run1 = _pass(A.augment_dataset(_dataset()[0], seed=3))
    run2 = _pass(A.augment_dataset(_dataset()[0], seed=3))
    np.testing.assert_array_equal(run1[0], run2[0])       # fresh pipelines, same seed
    np.testing.assert_array_equal(run1[1], run2[1])
    assert run1[0].shape == images.shape and run1[1].shape == points.shape
    assert run1[0].min() >= 0.0 and run1[0].max() <= 1.0

    other = _pass(A.augment_dataset(_dataset()[0], seed=4))
    assert not np.allclose(run1[1], other[1], atol=1e-3)

    pipeline = A.augment_dataset(ds, seed=3)
    epoch1, epoch2 = _pass(pipeline), _pass(pipeline)     # one dataset, iterated twice
    np.testing.assert_array_equal(epoch1[1], run1[1])     # first epoch is the seeded run
    for i in range(N_DS):
        assert not np.allclose(epoch1[1][i], epoch2[1][i], atol=1e-3), i

    # Every element gets its own parameters: same input, different outputs.
    same = tf.data.Dataset.from_tensors((images[0], points[0])).repeat(3)
    _, same_points = _pass(A.augment_dataset(same, seed=3))
    assert not np.allclose(same_points[0], same_points[1], atol=1e-3)
    assert not np.allclose(same_points[1], same_points[2], atol=1e-3)
