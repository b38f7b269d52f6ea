"""The sideways bias that mirrored training leaves in a model, and its correction (notebook 09).

A horizontal flip sends a crop's pixel centre x to ``size - 1 - x`` (:mod:`augment`), so a
mirrored face's points land where the annotators would have put them only if 300-W's points
sat exactly on pixel centres. They do not quite: on the training faces every model we trained
with flips puts its points about 0.6 px to the left of the annotators' (x only: nothing flips
y, and y shows no such bias), at every face size, while eye ResNets trained without flips
show none (the release eye ResNets learn from mirror images too, and have one). The model learns the average of the two conventions, the annotators' and
the mirror's, and so misses the annotators' by their offset.

The cure would be to flip about the annotators' axis when training; for trained models we
measure each one's mean x error on its own training faces (never the selection tenth) when
the weights are exported, store it in the weights manifest (``"mirror_bias_px"``) and add it
back to that model's points. A region ResNet reading the mirrored region's crop
(``fkd predict --flip``) has a bias of its own, stored under :func:`mirrored` of its name. The
measurement and what it bought are in notebook 09 and ``benchmarks/mirror_bias.py``.
"""
import numpy as np

from .metrics import nme

#: the weights manifest's key: ``{model name: x bias in image pixels}``, and
#: ``{mirrored(name): x bias or null}`` for the region ResNets' mirrored reads
MANIFEST_KEY = "mirror_bias_px"
#: faces a model misses by more than this (NME, the failure threshold) are left out of its
#: bias: a misplaced face is not a convention
MAX_NME = 0.08


def x_bias(points, gt, indices=None, max_nme=MAX_NME):
    """A model's mean sideways error on some of the points (``indices``; None: all 68),
    ground truth minus prediction in image pixels, over the faces it places within
    ``max_nme`` (NME of the whole shape). ``points``, ``gt``: (N, 68, 2), 0-based. NaN when it
    places none."""
    points, gt = np.asarray(points, np.float64), np.asarray(gt, np.float64)
    error = nme(points, gt)   # (a prediction with non-finite points scores NaN or inf and is
    # left out; the ground truth must be finite with distinct eye corners: nme raises otherwise)
    kept = np.isfinite(error) & (error <= max_nme)
    if not kept.any():
        return float("nan")
    chosen = slice(None) if indices is None else list(indices)
    return float((gt[kept][:, chosen, 0] - points[kept][:, chosen, 0]).mean())


def mirrored(name):
    """The key of ``name``'s bias when it reads mirrored crops (``fkd predict --flip``: a
    region ResNet reading the mirrored region's crops, its points mirrored back): the
    points carry the annotators' offset mirrored, so that read has a bias of its own."""
    return f"{name}:mirrored"


def is_mirrored(key):
    """Whether a bias key is a mirrored read's (:func:`mirrored`)."""
    return key.endswith(mirrored(""))


def split_reads(biases):
    """``(plain, mirrored)``: a manifest's biases of the models' own reads and of their
    mirrored reads, both keyed by model name."""
    reads = {name[:-len(mirrored(""))]: b for name, b in biases.items() if is_mirrored(name)}
    return {n: b for n, b in biases.items() if not is_mirrored(n)}, reads


def shift_x(points, bias_px):
    """Points (..., 2) moved ``bias_px`` pixels to the right (a new array)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] += float(bias_px or 0.0)
    return out


def biases_from_manifest(manifest):
    """``{model name: bias px}`` stored in a weights manifest, the mirrored reads' under
    :func:`mirrored` names (empty for folders exported before the correction existed: their
    points are used as the models give them; a null entry, a read no training face measured,
    is left out: no correction)."""
    stored = (manifest or {}).get(MANIFEST_KEY) or {}
    return {name: float(value) for name, value in stored.items()
            if isinstance(value, (int, float)) and np.isfinite(value)}
