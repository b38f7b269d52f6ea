"""The yaw proxy: zero for a frontal face, odd under a mirror, blind to roll, scale and shift,
and read off the nose tip's place between the jaw's ends as worked by hand."""
import numpy as np
import pytest

from fkd_utils import pose
from fkd_utils.markup import MIRROR
from fkd_utils.synthetic import mean_face_shape


def _rotate(points, degrees):
    a = np.radians(degrees)
    return points @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def _turned(fraction):
    """The template with its nose tip moved to ``fraction`` of the way from point 0 to 16."""
    shape = mean_face_shape().copy()
    x0, x16 = shape[0, 0], shape[16, 0]
    shape[pose.NOSE_TIP, 0] = x0 + fraction * (x16 - x0)
    return shape


def test_a_frontal_template_has_no_yaw():
    assert abs(pose.yaw_degrees(mean_face_shape())) < 1.0


@pytest.mark.parametrize("fraction, degrees", [(0.5, 0.0), (0.75, 30.0), (1.0, 90.0),
                                               (0.25, -30.0), (0.0, -90.0)])
def test_yaw_is_the_arcsine_of_the_nose_tips_offset(fraction, degrees):
    # 2 r - 1 = sin(yaw): r = 0.75 gives asin(0.5) = 30 degrees
    assert pose.yaw_degrees(_turned(fraction)) == pytest.approx(degrees, abs=1.0)


def test_mirroring_a_face_negates_its_yaw():
    shape = _turned(0.7)
    mirrored = np.empty_like(shape)
    mirrored[list(MIRROR)] = shape * [-1, 1]
    assert pose.yaw_degrees(mirrored) == pytest.approx(-pose.yaw_degrees(shape), abs=1e-9)


@pytest.mark.parametrize("roll", [-40.0, 15.0, 60.0])
def test_roll_scale_and_shift_leave_yaw_alone(roll):
    shape = _turned(0.65)
    moved = 3.7 * _rotate(shape, roll) + [120.0, -40.0]
    assert pose.yaw_degrees(moved) == pytest.approx(pose.yaw_degrees(shape), abs=1e-9)


def test_batches_match_single_shapes_and_degenerate_shapes_give_nan():
    shapes = np.stack([_turned(0.6), _turned(0.3), np.zeros((68, 2))])
    yaw = pose.yaw_degrees(shapes)
    assert yaw[0] == pytest.approx(pose.yaw_degrees(shapes[0]))
    assert yaw[1] == pytest.approx(pose.yaw_degrees(shapes[1]))
    assert np.isnan(yaw[2])


def test_bins_take_the_absolute_angle_and_include_the_last_edge():
    yaw = np.array([0.0, -14.9, 15.0, -29.0, 44.9, -45.0, 90.0])
    assert pose.yaw_bins(yaw).tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert pose.yaw_bin_labels() == ["0-15", "15-30", "30-45", "45-90"]
