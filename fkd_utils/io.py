"""Reading and writing 300-W files (introduced in notebook 01).

Coordinate conventions:

* ``.pts`` files (iBUG format) hold 1-based pixel coordinates: the centre of the top-left
  pixel is (1, 1). :func:`read_pts` and :func:`write_pts` keep the file's own convention.
* Inside the package (crops, models) points are 0-based pixel centres: ``x0 = x_pts - 1``,
  which is also scikit-image's convention. :func:`pts_to_pixels` / :func:`pixels_to_pts`
  convert. Prediction files store the ``.pts`` convention, so they compare directly with
  the ground truth files.
* Official face boxes (``bounding_boxes_*.mat``) are ``[x_min, y_min, x_max, y_max]``,
  1-based like the points.
"""
from pathlib import Path

import numpy as np

from .markup import N_POINTS


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


def read_pts(path, n_points=N_POINTS):
    """Read an iBUG ``.pts`` file as an ``(n_points, 2)`` float array (x, y; 1-based)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    except UnicodeDecodeError:
        raise DataError(f"{path}: not an iBUG .pts file (not text)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise DataError(f"{path}: not an iBUG .pts file (no '{{ ... }}' block)") from None
    header = dict(ln.split(":", 1) for ln in lines[:start] if ":" in ln)
    declared = header.get("n_points")
    if declared is not None:
        try:
            declared = int(declared)
        except ValueError:
            raise DataError(f"{path}: header n_points {declared.strip()!r} is not a number") from None
    body = lines[start + 1:end]
    try:
        points = np.array([[float(v) for v in ln.split()] for ln in body], dtype=np.float64)
    except ValueError as err:
        raise DataError(f"{path}: unparsable coordinate ({err})") from None
    if declared is not None and declared != len(body):
        raise DataError(f"{path}: header says n_points {declared} but {len(body)} are listed")
    if points.shape != (n_points, 2):
        raise DataError(f"{path}: expected {n_points} points of 2 coordinates, "
                        f"found shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise DataError(f"{path}: non-finite coordinates")
    return points


def write_pts(path, points, overwrite=False):
    """Write points (N, 2) in the iBUG ``.pts`` format. Refuses to replace a file unless asked."""
    path = Path(path)
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{path}: points must have shape (N, 2), got {points.shape}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to write over it")
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")


def pts_to_pixels(points):
    """1-based ``.pts`` coordinates -> 0-based pixel centres."""
    return np.asarray(points, dtype=np.float64) - 1.0


def pixels_to_pts(points):
    """0-based pixel centres -> 1-based ``.pts`` coordinates."""
    return np.asarray(points, dtype=np.float64) + 1.0


def read_image(path):
    """Read an image as an RGB ``uint8`` array (H, W, 3); grey and RGBA are converted."""
    from skimage import io as skio
    from skimage.color import gray2rgb, rgba2rgb
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        image = skio.imread(path)
    except Exception as err:  # imageio/PIL raise many kinds
        raise DataError(f"{path}: cannot decode image ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if image.ndim == 3 and image.shape[2] == 2:      # grey + alpha: as RGBA
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=2), image[..., 1:]], axis=2)
    if image.ndim == 2:
        image = gray2rgb(image)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = (rgba2rgb(image) * 255).round().astype(np.uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise DataError(f"{path}: unsupported image shape {image.shape}")
    if image.dtype != np.uint8:
        image = _to_uint8(image)
    return image


def _to_uint8(image):
    """Scale by the value range of the image's type (not by its own maximum, which would
    brighten a dark 16-bit image): unsigned ints by their type's maximum, signed ints (PIL's
    "I" mode, usually 16-bit data) by 255 or 65535, floats as [0, 1]."""
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.unsignedinteger):
        top = float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.integer):
        top = 255.0 if image.max() <= 255 else 65535.0
    else:
        top = 1.0
    return np.clip(np.round(image.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def image_size(path):
    """(width, height) of an image without decoding its pixels."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as err:
        raise DataError(f"{path}: cannot decode image ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def _cell_items(cell):
    # 1 x N in the official files; N x 1 (a column cell) must not lose all but the first.
    return list(np.asarray(cell).ravel())


def read_boxes(path):
    """Read an official 300-W ``bounding_boxes_*.mat`` file.

    Returns ``{image_name: {"bb_detector": (4,), "bb_ground_truth": (4,)}}`` with boxes as
    ``[x_min, y_min, x_max, y_max]`` (1-based). Uses :func:`scipy.io.loadmat`.
    """
    import scipy.io
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:
        raise DataError(f"{path}: cannot read MATLAB file ({err})") from None
    key = next((k for k in mat if not k.startswith("__")), None)
    if key is None:
        raise DataError(f"{path}: no variable in the file")
    boxes = {}
    for entry in _cell_items(mat[key]):
        record = entry[0, 0] if entry.dtype == object else entry
        record = record[0, 0] if record.ndim else record
        names = record.dtype.names or ()
        if "imgName" not in names:
            raise DataError(f"{path}: entries lack the 'imgName' field (fields: {names})")
        name = str(np.asarray(record["imgName"]).ravel()[0])
        boxes[name] = {field: np.asarray(record[field], dtype=np.float64).ravel()[:4]
                       for field in ("bb_detector", "bb_ground_truth") if field in names}
    return boxes
