"""A linear correction of the cascade's final shape, learned on the training faces (notebook 09).

Seen in the frame of its own outer eye corners (origin at their midpoint, their distance 1, the
line through them level), the cascade's shape of a face tells how the head is turned and
tilted, and the models err in ways that follow the pose: on a turned face the far side of the
jaw is pulled towards the middle. A ridge regression from that shape (136 numbers and a
constant) to its error in the same frame, fitted on the cascade's predictions for the fit
faces (the selection tenth left out) when the weights are exported, is added back to every
shape. One correction per number of stages, since each stage count errs in its own way;
stored beside the models (``shape_correction.npz``, its sha256 in the manifest). The fit faces
were also the models' training faces, where their error is smaller than on new faces (2.7 %
against 3.4 % on the tenth): the ridge term keeps the correction from following that too
closely.
"""
from dataclasses import dataclass, field

import numpy as np

from .markup import OUTER_EYE_CORNERS

#: the ridge penalty, on shapes in eye-corner units (chosen on the selection tenth)
RIDGE = 1.0
FILE = "shape_correction.npz"
MANIFEST_KEY = "shape_correction"


def eye_frame(shapes):
    """Each shape's (N, 68, 2) eye-corner frame: ``(centre (N, 2), scale (N,), rotation (N,
    2, 2))``; scale 0 (an unusable shape) where the eye corners coincide or any point of the
    shape is not finite."""
    shapes = np.asarray(shapes, np.float64)
    right, left = shapes[:, OUTER_EYE_CORNERS[0]], shapes[:, OUTER_EYE_CORNERS[1]]
    axis = left - right
    scale = np.linalg.norm(axis, axis=-1)
    scale[~np.isfinite(shapes).all(axis=(1, 2))] = 0.0
    angle = np.arctan2(axis[:, 1], axis[:, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], axis=1)
    return (right + left) / 2.0, scale, rotation


def to_frame(points, frame):
    """Points (N, K, 2) in image pixels -> the frame's units (eye corners at (-0.5, 0) and
    (0.5, 0) for the shapes that set it)."""
    centre, scale, rotation = frame
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.einsum("nij,nkj->nki", rotation, points - centre[:, None]) / scale[:, None, None]


def from_frame(points, frame):
    """Inverse of :func:`to_frame`."""
    centre, scale, rotation = frame
    return np.einsum("nji,nkj->nki", rotation, points * scale[:, None, None]) + centre[:, None]


def _design(framed):
    return np.concatenate([framed.reshape(len(framed), -1), np.ones((len(framed), 1))], axis=1)


def fit(predicted, truth, ridge=RIDGE):
    """The correction (137, 136): ridge regression from predicted shapes (N, 68, 2) in their
    own eye-corner frames to the truth's offset from them in the same frames. Faces whose
    predicted eye corners coincide, or with a point that is not finite (predicted or true),
    are left out."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    frame = eye_frame(predicted)
    usable = (frame[1] > 0) & np.isfinite(truth).all(axis=(1, 2))
    if not usable.any():
        raise ValueError("no predicted shape with distinct eye corners and finite points to fit "
                         "a correction on")
    frame = tuple(part[usable] for part in frame)
    framed = to_frame(predicted[usable], frame)
    offsets = (to_frame(truth[usable], frame) - framed).reshape(int(usable.sum()), -1)
    design = _design(framed)
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the constant is not shrunk
    return np.linalg.solve(design.T @ design + penalty, design.T @ offsets)


def corrected(shapes, correction):
    """Shapes (N, 68, 2) with ``correction`` (from :func:`fit`) added; None leaves them as they
    are, as it does shapes whose eye corners coincide or that have a point that is not
    finite."""
    shapes = np.array(shapes, dtype=np.float64, copy=True)
    if correction is None or not len(shapes):
        return shapes
    frame = eye_frame(shapes)
    usable = frame[1] > 0
    if usable.any():
        frame = tuple(part[usable] for part in frame)
        framed = to_frame(shapes[usable], frame)
        moved = framed + (_design(framed) @ correction).reshape(framed.shape)
        shapes[usable] = from_frame(moved, frame)
    return shapes


def save(out_dir, corrections):
    """Write ``{stage count: correction}`` to ``out_dir/FILE``; returns the path."""
    from pathlib import Path
    path = Path(out_dir) / FILE
    np.savez_compressed(path, **{str(k): np.asarray(v, np.float32) for k, v in corrections.items()})
    return path


def stored(weights_dir, manifest):
    """``{stage count: correction}`` stored in a weights folder, checked once against the
    manifest's sha256; empty where the folder has none (exported before the correction
    existed)."""
    path = checked_file(weights_dir, manifest)
    if path is None:
        return {}
    with np.load(path) as found:
        return {int(key): np.asarray(found[key], np.float64) for key in found.files}


def checked_file(weights_dir, manifest):
    """The weights folder's correction file, checked against the manifest's sha256; None
    where the manifest lists no correction."""
    from pathlib import Path
    from .io import DataError
    from .weights_io import sha256
    if MANIFEST_KEY not in manifest:
        return None
    path = Path(weights_dir) / FILE
    want = manifest.get("files", {}).get(FILE)
    if not path.is_file():
        raise DataError(f"{path}: missing from the weights folder (its manifest lists a "
                        "shape correction)")
    if not want:
        raise DataError(f"{path}: not listed in manifest.json's 'files' (no checksum to check "
                        "it against)")
    if want != sha256(path):
        raise DataError(f"{path}: sha256 does not match manifest.json (corrupt or replaced file)")
    return path


def load(weights_dir, manifest, stages):
    """The correction for ``stages`` stored in a weights folder (see :func:`stored`); None
    where there is none for that stage count."""
    return stored(weights_dir, manifest).get(int(stages))


@dataclass(frozen=True)
class Corrections:
    """What a weights folder corrects the cascade's points with: each model's mirror bias
    (``x_bias``, :mod:`mirror_bias`) and the shape correction per number of stages
    (``shapes``); both empty for folders without them."""
    x_bias: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def for_stages(self, stages):
        """The shape correction for ``stages`` stages, or None."""
        return self.shapes.get(int(stages))


def folder_corrections(weights_dir, manifest):
    """The :class:`Corrections` stored in a weights folder (checked against its manifest)."""
    from .mirror_bias import biases_from_manifest
    return Corrections(biases_from_manifest(manifest), stored(weights_dir, manifest))
