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
    """A 300-W image as an RGB ``uint8`` array (H, W, 3), its pixels as stored (no EXIF
    rotation: the ``.pts`` files match the raw pixels). See :func:`decode_image`."""
    return decode_image(path, upright=False)


def read_photo(path):
    """A user's photo as an RGB ``uint8`` array, turned upright by its EXIF orientation (phones
    store pictures sideways). See :func:`decode_image`."""
    return decode_image(path, upright=True)


#: PIL modes whose pixels PIL itself turns into RGB correctly.
_PIL_TO_RGB = ("RGB", "L", "1", "CMYK", "YCbCr", "RGBX", "HSV")
#: modes with transparency: composited over white (as a browser shows them).
_PIL_ALPHA = ("RGBA", "RGBa", "LA", "La", "PA")


def decode_image(path, upright=True):
    """The one image decoder: any PIL mode -> RGB ``uint8`` (H, W, 3).

    * RGB, grey, 1-bit, CMYK, YCbCr: converted by PIL (CMYK with its inversion handled).
    * RGBA, LA, PA and palette images with a transparent colour: composited over white.
    * 16- and 32-bit integer grey (I;16, I): scaled by the type's range (see :func:`_to_uint8`),
      so a mid-grey 16-bit picture stays mid-grey.
    * Float grey (F): [0, 1] when its maximum is at most 1, else taken as 0-255; NaN or
      infinite pixels are refused.
    * Animations and multi-page files (GIF, TIFF): the first frame.
    * ``upright``: apply the EXIF orientation tag.

    Anything else (not an image, truncated, an unknown mode, zero pixels) raises a
    :class:`DataError` naming the file and the problem.
    """
    from PIL import Image, ImageOps
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.seek(0)
            if upright and im.getexif().get(0x0112, 1) != 1:
                im = ImageOps.exif_transpose(im)
            image = _pil_to_rgb(im, path)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, ...
        raise DataError(f"{path}: cannot decode image ({_reason(err)})") from None
    if image.size == 0:
        raise DataError(f"{path}: the image has no pixels ({image.shape[1]}x{image.shape[0]})")
    return image


def _reason(err):
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _pil_to_rgb(im, path):
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in _PIL_TO_RGB:
        return np.asarray(im.convert("RGB"))
    if im.mode in _PIL_ALPHA:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[..., 3:]
        return np.round(255.0 * (rgba[..., :3] * alpha + (1.0 - alpha))).astype(np.uint8)
    if im.mode.startswith(("I", "F")):
        grey = np.asarray(im)
        if grey.dtype.kind == "f":
            if not np.all(np.isfinite(grey)):
                raise DataError(f"{path}: NaN or infinite pixel values (float image)")
            grey = grey / 255.0 if grey.size and grey.max() > 1.0 else grey
        grey = _to_uint8(grey)
        return np.repeat(grey[..., None], 3, axis=-1)
    try:
        return np.asarray(im.convert("RGB"))
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: unsupported image mode {im.mode!r} ({_reason(err)})") from None


def _to_uint8(image):
    """Scale by the value range of the image's type (not by its own maximum, which would
    brighten a dark 16-bit image): unsigned ints by their type's maximum, signed ints (PIL's
    "I" mode, usually 16-bit data) by 255 or 65535, floats as [0, 1]."""
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.unsignedinteger):
        top = float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.integer):
        top = 255.0 if image.size == 0 or image.max() <= 255 else 65535.0
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
        raise DataError(f"{path}: cannot decode image ({_reason(err)})") from None


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
