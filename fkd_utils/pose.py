"""Head turn (yaw) estimated from a face's 68 true points, for error breakdowns by pose
(notebook 08 and the README's pose table).

300-W gives no head pose, and no 3D face model ships with the project, so the yaw here is a
proxy read from the 2D markup: after removing the roll (the line through the two eyes' centres
made horizontal), the nose tip (point 30) sits halfway between the jaw's two ends (points 0
and 16) in a frontal face and moves towards one end as the head turns. With the face's outline
a circle in the image plane and the nose tip on it, the tip's offset from the middle is the
sine of the turn: ``yaw = asin(2 r - 1)`` with ``r`` the tip's fraction of the way from point 0
to point 16. Positive yaw: the nose tip moves towards point 16 (the subject's left jaw). It
orders faces by how far they are turned; it is not a calibrated angle.
"""
import numpy as np

from .markup import LEFT_EYE, RIGHT_EYE

NOSE_TIP = 30
JAW_ENDS = (0, 16)
#: Bins of |yaw| (degrees of the proxy) for the README's pose table.
YAW_BINS = (0.0, 15.0, 30.0, 45.0, 90.0)


def _unrolled(points):
    """Points (N, 68, 2) rotated about their centre so the eye line is horizontal."""
    points = np.asarray(points, float)
    eye_r = points[:, list(RIGHT_EYE)].mean(axis=1)
    eye_l = points[:, list(LEFT_EYE)].mean(axis=1)
    dx, dy = (eye_l - eye_r).T
    angle = np.arctan2(dy, dx)
    cos, sin = np.cos(-angle), np.sin(-angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (N, 2, 2)
    centre = points.mean(axis=1, keepdims=True)
    return np.einsum("nij,nkj->nki", rotation, points - centre)


def yaw_degrees(points):
    """The yaw proxy (degrees, -90..90) of each shape in ``points`` (N, 68, 2) or (68, 2)."""
    points = np.asarray(points, float)
    single = points.ndim == 2
    x = _unrolled(points[None] if single else points)[..., 0]
    start, end = x[:, JAW_ENDS[0]], x[:, JAW_ENDS[1]]
    width = end - start
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (x[:, NOSE_TIP] - start) / width
    yaw = np.degrees(np.arcsin(np.clip(2.0 * r - 1.0, -1.0, 1.0)))
    yaw = np.where(np.abs(width) > 0, yaw, np.nan)
    return yaw[0] if single else yaw


def yaw_bin_labels(bins=YAW_BINS):
    return [f"{lo:g}-{hi:g}" for lo, hi in zip(bins[:-1], bins[1:])]


def yaw_bins(yaw, bins=YAW_BINS):
    """Index of each face's |yaw| bin (the last bin includes its upper edge)."""
    return np.clip(np.digitize(np.abs(yaw), bins[1:-1]), 0, len(bins) - 2)
