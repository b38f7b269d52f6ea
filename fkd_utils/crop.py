"""Face and region crops and their exact inverses (introduced in notebook 01).

Every crop here is an axis-aligned square of the source image resized to ``size x size``. It
is described by a *transform* ``t = [s, tx, ty]`` acting on 0-based pixel centres:
``x_crop = s * x + tx`` and ``y_crop = s * y + ty``. :func:`to_crop` and :func:`from_crop`
apply it and its inverse to points, so predictions made on a crop map back to the original
image exactly (up to float rounding).

The square covers ``[left, left + side)`` in pixel-edge coordinates (pixel i spans
[i, i + 1)), so ``s = size / side`` and ``tx = (0.5 - left) * s - 0.5``.
"""
import cv2
import numpy as np

from .io import pts_to_pixels
from .markup import CROP_REGIONS, REGIONS


def square_from_box(box, margin=0.0):
    """Centre (x, y) in 0-based pixel centres and side of the square around a 1-based box.

    ``box`` is ``[x_min, y_min, x_max, y_max]`` in the ``.pts`` convention; the side is the
    larger box side times ``1 + margin``.
    """
    box = np.asarray(box, dtype=np.float64)
    x_min, y_min, x_max, y_max = box
    if not (x_max > x_min and y_max > y_min):
        raise ValueError(f"degenerate box {box.tolist()}")
    center = pts_to_pixels([(x_min + x_max) / 2, (y_min + y_max) / 2])
    side = max(x_max - x_min, y_max - y_min) * (1.0 + margin)
    return center, side


def square_transform(center, side, size):
    """Transform ``[s, tx, ty]`` of the square (centre, side) resized to ``size`` pixels."""
    s = size / side
    left = np.asarray(center, dtype=np.float64) + 0.5 - side / 2.0
    tx, ty = (0.5 - left) * s - 0.5
    return np.array([s, tx, ty])


def to_crop(points, transform):
    """Map 0-based image points (..., 2) into crop coordinates."""
    t = np.asarray(transform, dtype=np.float64)
    s, shift = t[..., :1], t[..., 1:]
    return np.asarray(points, np.float64) * s[..., None, :] + shift[..., None, :]


def from_crop(points, transform):
    """Inverse of :func:`to_crop`: crop coordinates back to 0-based image points."""
    t = np.asarray(transform, dtype=np.float64)
    s, shift = t[..., :1], t[..., 1:]
    return (np.asarray(points, np.float64) - shift[..., None, :]) / s[..., None, :]


def crop_image(image, transform, size):
    """Resample ``image`` into the ``size x size`` crop of ``transform``; float32 in [0, 1].

    Outside the image is filled with black. A Gaussian pre-filter avoids aliasing when the
    crop shrinks the face. OpenCV does the filtering and the bilinear resampling (~5x
    scikit-image's ``gaussian_filter`` + ``warp``, which the tests keep as the reference).
    """
    s, tx, ty = np.asarray(transform, dtype=np.float64)
    sigma = (1.0 / s - 1.0) / 2.0 if s < 1.0 else 0.0
    # only the part of the image the crop sees (plus the filter's reach) is converted and
    # filtered: a face in a 12-megapixel photo costs what a face in a small one does
    pad = 3.0 * sigma + 2.0
    lo = np.floor((np.array([-0.5, -0.5]) - [tx, ty]) / s - pad).astype(int)
    hi = np.ceil((np.array([size - 0.5] * 2) - [tx, ty]) / s + pad).astype(int) + 1
    lo = np.clip(lo, 0, [image.shape[1], image.shape[0]])
    hi = np.clip(hi, lo, [image.shape[1], image.shape[0]])
    image = np.asarray(image[lo[1]:hi[1], lo[0]:hi[0]], dtype=np.float32) / 255.0
    tx, ty = tx + s * lo[0], ty + s * lo[1]
    if image.size == 0:
        return np.zeros((size, size, 3), np.float32)
    if sigma > 0:  # scipy's kernel: radius round(4 sigma), edges repeated
        radius = int(4.0 * sigma + 0.5)
        image = cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigma, sigma,
                                 borderType=cv2.BORDER_REPLICATE)
    forward = np.array([[s, 0.0, tx], [0.0, s, ty]])
    out = cv2.warpAffine(image, forward, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0, 0.0, 0.0))
    if out.ndim < image.ndim:  # OpenCV drops a single channel's axis
        out = out[..., None]
    return out.astype(np.float32)


def face_crop(image, box, size, margin=0.2, points=None):
    """Crop the face in ``box`` (1-based ``[x0, y0, x1, y1]``) with a margin, resized.

    Returns ``(crop, transform, points_in_crop)``; ``points`` are 0-based image points (or None).
    """
    center, side = square_from_box(box, margin)
    transform = square_transform(center, side, size)
    crop = crop_image(image, transform, size)
    moved = None if points is None else to_crop(points, transform)
    return crop, transform, moved


def region_square(points, region, margin=0.35, jitter=0.0, rng=None, image_shape=None):
    """The square around one region's points (0-based), with a margin and random offset.

    ``jitter`` is the standard deviation of the random shift of the centre and of the log
    side, as a fraction of the side (the paper's "offset with a small random noise", so that
    points are not always at the crop border). With ``image_shape``, a square that would
    leave the image is moved (and if needed shrunk) to lie inside it; the third return value
    says whether that happened.
    """
    pts = np.asarray(points, dtype=np.float64)[list(CROP_REGIONS[region])]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = (lo + hi) / 2.0
    side = max(float((hi - lo).max()), 4.0) * (1.0 + margin)
    if jitter and rng is not None:
        center = center + rng.normal(0.0, jitter, 2) * side
        side = side * float(np.exp(rng.normal(0.0, jitter)))
    clipped = False
    if image_shape is not None:
        height, width = image_shape[:2]
        limit = float(min(height, width))
        if side > limit:
            side, clipped = limit, True
        lower = side / 2.0 - 0.5
        upper = np.array([width, height], dtype=np.float64) - 0.5 - side / 2.0
        inside = np.clip(center, lower, upper)
        clipped = clipped or bool(np.any(np.abs(inside - center) > 1e-9))
        center = inside
    return center, side, clipped


def region_crop(image, points, region, size, margin=0.35, jitter=0.0, rng=None):
    """Crop one region placed from a full 68-point shape (0-based image points).

    Returns ``(crop, transform, clipped)``.
    """
    center, side, clipped = region_square(points, region, margin, jitter, rng, image.shape)
    transform = square_transform(center, side, size)
    return crop_image(image, transform, size), transform, clipped


def box_to_square(box_xyxy):
    """Centre and side of the square spanned by 0-based ``[x0, y0, x1, y1]`` boxes (..., 4)
    (the box regressor's outputs); sides are at least 2 px."""
    box = np.asarray(box_xyxy, dtype=np.float64)
    center = (box[..., :2] + box[..., 2:]) / 2.0
    side = np.maximum(np.abs(box[..., 2:] - box[..., :2]).max(axis=-1), 2.0)
    return center, (float(side) if side.ndim == 0 else side)


def region_boxes(points, margin=0.35):
    """The four region boxes ``(4, 4)`` as 0-based ``[x0, y0, x1, y1]`` squares (box targets).

    Used as targets by the box regressor (approach 3); one row per ``REGIONS`` entry.
    """
    rows = []
    for region in REGIONS:
        center, side, _ = region_square(points, region, margin)
        rows.append(np.concatenate([center - side / 2.0, center + side / 2.0]))
    return np.stack(rows)
