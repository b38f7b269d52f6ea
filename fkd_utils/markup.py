"""The iBUG 68-point markup used by 300-W (introduced in notebook 01).

Indices are 0-based. "Right" and "left" are the subject's: the right eye (36-41) is on the
image's left in a frontal photo. A horizontal flip turns the subject's right eye into a left
eye, so flipping images needs both the mirrored coordinates and the ``MIRROR`` permutation.
"""
import numpy as np

N_POINTS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_LOWER = tuple(range(31, 36))
NOSE = NOSE_BRIDGE + NOSE_LOWER
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))
MOUTH = OUTER_LIPS + INNER_LIPS
BROWS = RIGHT_BROW + LEFT_BROW
EYES = RIGHT_EYE + LEFT_EYE

#: Outer eye corners, the 300-W normaliser for the point-to-point error.
OUTER_EYE_CORNERS = (36, 45)

#: The 51 points without the jaw (the challenge's second protocol).
POINTS_51 = tuple(range(17, 68))

#: Parts for per-region error breakdowns (notebook 07).
PARTS = {
    "jaw": JAW,
    "brows": BROWS,
    "nose": NOSE,
    "eyes": EYES,
    "mouth": MOUTH,
}

#: The four regions of the paper's approaches 2 and 3. Each eye region carries its brow, so
#: that the regions together cover all 51 non-jaw points; the jaw stays with approach 1.
REGIONS = {
    "right_eye": RIGHT_BROW + RIGHT_EYE,
    "left_eye": LEFT_BROW + LEFT_EYE,
    "nose": NOSE,
    "mouth": MOUTH,
}
REGION_NAMES = tuple(REGIONS)

#: Half the jaw, from the subject's right ear to the chin (points 0-8): what our cascade's jaw
#: ResNet reads. The left half is read from the mirrored photo, where it becomes a right half.
JAW_HALF = JAW[:9]

#: Every point group a region ResNet crops and predicts: the paper's four and our jaw half.
CROP_REGIONS = {**REGIONS, "jaw_half": JAW_HALF}


def _mirror_permutation():
    pairs = [(i, 16 - i) for i in range(8)]                       # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]                 # brows
    pairs += [(31, 35), (32, 34)]                                 # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                       # inner lips
    mirror = np.arange(N_POINTS)
    for a, b in pairs:
        mirror[a], mirror[b] = b, a
    return tuple(int(i) for i in mirror)


#: ``MIRROR[i]`` is the index that point i takes after a horizontal flip.
MIRROR = _mirror_permutation()


def mirror_points(points, width):
    """68-point shapes (..., 68, 2) of photos ``width`` px wide as they lie in the mirrored
    photos (0-based pixels: x -> width - 1 - x, points renumbered by ``MIRROR``)."""
    mirrored = np.array(np.asarray(points)[..., list(MIRROR), :], dtype=np.float64)
    mirrored[..., 0] = width - 1 - mirrored[..., 0]
    return mirrored


def region_indices(name):
    """Point indices of one region (``REGIONS`` key); a clear error for an unknown name."""
    try:
        return np.asarray(REGIONS[name])
    except KeyError:
        raise ValueError(f"unknown region {name!r}; choose one of {REGION_NAMES}") from None
