"""fkd_utils.widgets: results loading, ranking, dominant part, drawing, gallery and the
inspector, driven without a browser on fake predictions with known errors."""
import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fkd_utils import data, paths, pipeline, synthetic, widgets  # noqa: E402
from fkd_utils.io import DataError  # noqa: E402
from fkd_utils.markup import JAW, MOUTH  # noqa: E402

COUNTS = {"afw": 3, "helen/testset": 4}     # train 3, validation 4
PROFILE = "quick"


def _shift(gt, part, pixels):
    """``gt`` (N, 68, 2) with image k's ``part`` points moved right by pixels[k]."""
    points = gt.copy()
    for k, px in enumerate(pixels):
        points[k, list(part), 0] += px
    return points


def _norm(gt):
    return np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)


def _moves(gt, steps):
    """Pixels that move image k's part by steps[k] outer-eye distances (5 % per step)."""
    return 0.05 * np.asarray(steps, float) * _norm(gt)


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    """A tiny set and fake predictions: "end_to_end" moves image k's mouth by (k+1) * 5 % of
    its outer-eye distance (so the last image is the worst) on both splits, "box" moves image
    k's jaw by (N-k) * 5 % on the validation split only."""
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    data_dir = synthetic.generate(tmp_path / "300w", counts=COUNTS, seed=0, image_size=96)
    folder = paths.results_dir(PROFILE)
    truth = {}
    for split in ("train", "validation"):
        ids, _, gt = truth[split] = data.ground_truth(data_dir, split)
        moved = _shift(gt, MOUTH, _moves(gt, np.arange(1, len(ids) + 1)))
        # saved in reverse order: loading must align them with the ground truth by id
        pipeline.save_predictions(folder / f"end_to_end_{split}.npz", ids[::-1], moved[::-1])
    ids, _, gt = truth["validation"]
    pipeline.save_predictions(folder / "box_validation.npz", ids,
                              _shift(gt, JAW, _moves(gt, np.arange(len(ids), 0, -1))))
    (folder / "box_validation.npz.123.tmp.npz").write_bytes(b"half written")   # ignored
    return data_dir, truth


def test_load_results_aligns_predictions_with_ground_truth(setup):
    data_dir, truth = setup
    results = widgets.load_results(PROFILE, data_dir)
    assert list(results) == ["end_to_end", "box"]                  # paper order
    assert list(results["end_to_end"]) == ["train", "validation"]
    assert list(results["box"]) == ["validation"]
    r = results["end_to_end"]["validation"]
    ids, subsets, gt = truth["validation"]
    assert list(r.ids) == list(ids) and list(r.subsets) == list(subsets) and len(r) == len(ids)
    np.testing.assert_allclose(r.gt, gt)
    steps = np.arange(1, len(ids) + 1)
    np.testing.assert_allclose(r.points, _shift(gt, MOUTH, _moves(gt, steps)))
    # errors: only the mouth (20 of 68 points, 20 of 51) moved, by 5 % per step
    np.testing.assert_allclose(r.errors68, 0.05 * steps * 20 / 68)
    np.testing.assert_allclose(r.errors51, 0.05 * steps * 20 / 51)
    np.testing.assert_allclose(r.parts["mouth"], 0.05 * steps)
    assert set(r.parts) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert not r.parts["jaw"].any() and not r.parts["eyes"].any()


def test_load_results_filters_and_explains_missing_files(setup, tmp_path, monkeypatch):
    data_dir, _ = setup
    only = widgets.load_results(PROFILE, data_dir, approaches=["box"], splits=["validation"])
    assert list(only) == ["box"] and list(only["box"]) == ["validation"]
    with pytest.raises(DataError, match="run notebooks 04 first"):
        widgets.load_results(PROFILE, data_dir, approaches=["box"], splits=["test"])
    monkeypatch.setenv("FKD_HOME", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="run notebooks 02, 03, 04 first"):
        widgets.load_results(PROFILE, data_dir)


def test_load_results_refuses_predictions_of_other_images(setup):
    data_dir, truth = setup
    ids, _, gt = truth["validation"]
    pipeline.save_predictions(paths.results_dir(PROFILE) / "region_validation.npz", ids[:-1], gt[:-1])
    with pytest.raises(DataError, match="ids do not match"):
        widgets.load_results(PROFILE, data_dir)


def test_ranked_follows_the_known_offsets(setup):
    data_dir, _ = setup
    results = widgets.load_results(PROFILE, data_dir)
    r = results["end_to_end"]["validation"]
    assert list(widgets.ranked(r)) == [3, 2, 1, 0]                 # mouth moved 4, 3, 2, 1 steps
    assert list(widgets.ranked(r, worst_first=False)) == [0, 1, 2, 3]
    assert list(widgets.ranked(r, points=51)) == list(widgets.ranked(r, points=68))
    assert list(widgets.ranked(results["end_to_end"]["train"])) == [2, 1, 0]
    box = results["box"]["validation"]
    assert list(widgets.ranked(box)) == [0, 1, 2, 3]               # jaw moved 4, 3, 2, 1 steps
    assert list(widgets.ranked(box, points=51, worst_first=False)) == [0, 1, 2, 3]  # all 0: file order
    assert not box.errors51.any()


def test_ranking_is_by_pixels_when_faces_have_the_same_size():
    gt = np.tile(np.random.default_rng(0).uniform(20, 80, (1, 68, 2)), (5, 1, 1))
    r = widgets.Result.from_arrays("x", "test", [f"i{k}" for k in range(5)],
                                   _shift(gt, MOUTH, [3, 1, 4, 0, 2]), gt, ["s"] * 5)
    assert list(widgets.ranked(r)) == [2, 0, 4, 1, 3]
    assert list(widgets.ranked(r, worst_first=False)) == [3, 1, 4, 0, 2]


def test_dominant_part(setup):
    data_dir, _ = setup
    results = widgets.load_results(PROFILE, data_dir)
    r = results["end_to_end"]["validation"]
    for i in range(len(r)):
        assert widgets.dominant_part(r.parts, i) == ("mouth", pytest.approx(1.0))
    box = results["box"]["validation"]
    assert widgets.dominant_part(box.parts, 0) == ("jaw", pytest.approx(1.0))
    assert "jaw" not in widgets.part_breakdown(box, 51)
    parts = {"jaw": np.array([1.0]), "nose": np.array([3.0]), "mouth": np.array([0.0])}
    assert widgets.dominant_part(parts, 0) == ("nose", pytest.approx(0.75))


def test_crop_box_covers_the_points_and_stays_in_the_image():
    pts = np.array([[10.0, 20.0], [30.0, 60.0]])
    x0, y0, x1, y1 = widgets.crop_box(pts, (100, 200), margin=0.25)
    assert (x0, y0) == (0, 10) and (x1, y1) == (41, 71)
    assert widgets.crop_box(pts + 1000, (100, 200))[2:] == (200, 100)


def _scatters(ax):
    return [c for c in ax.collections if len(c.get_offsets())]


def test_draw_case_puts_the_points_on_the_crop(setup):
    data_dir, _ = setup
    r = widgets.load_results(PROFILE, data_dir)["end_to_end"]["validation"]
    fig, (ax_image, ax_bars) = plt.subplots(1, 2)
    drawn = widgets.draw_case(ax_image, ax_bars, r, 2, data_dir)
    gt_dots, pred_crosses = _scatters(ax_image)
    np.testing.assert_allclose(gt_dots.get_offsets(), r.gt[2] - 1 - drawn["offset"])
    np.testing.assert_allclose(pred_crosses.get_offsets(), r.points[2] - 1 - drawn["offset"])
    image = ax_image.get_images()[0].get_array()
    full = plt.imread(data_dir / r.ids[2])
    x0, y0, x1, y1 = widgets.crop_box(np.concatenate([r.gt[2], r.points[2]]) - 1, full.shape)
    np.testing.assert_array_equal(drawn["offset"], [x0, y0])
    assert image.shape[:2] == (y1 - y0, x1 - x0) and image.shape[:2] != full.shape[:2]
    np.testing.assert_array_equal(image, (full[y0:y1, x0:x1, :3] * 255).round())
    assert r.ids[2] in ax_image.get_title() and r.subsets[2] in ax_image.get_title()
    assert f"{100 * r.errors68[2]:.2f} %" in ax_image.get_title()
    labels = [t.get_text() for t in ax_bars.get_yticklabels()]
    assert labels == ["jaw", "brows", "nose", "eyes", "mouth"]
    colours = {label: bar.get_facecolor() for label, bar in zip(labels, ax_bars.patches)}
    assert colours["mouth"] == matplotlib.colors.to_rgba(widgets.DOMINANT_COLOUR)
    assert colours["jaw"] == matplotlib.colors.to_rgba(widgets.PART_COLOUR)
    assert drawn["part"] == "mouth"
    plt.close(fig)


def test_gallery_has_best_row_and_worst_row(setup):
    data_dir, _ = setup
    r = widgets.load_results(PROFILE, data_dir)["end_to_end"]["validation"]
    fig = widgets.gallery(r, data_dir, n=2)
    assert len(fig.axes) == 4
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(2, 2)}
    best, worst = widgets.gallery_cases(r, n=2)
    assert r.errors68[best].max() < r.errors68[worst].min()
    assert list(best) == [0, 1] and list(worst) == [3, 2]
    titles = [ax.get_title() for ax in fig.axes]
    for ax, index in zip(fig.axes, list(best) + list(worst)):
        assert r.ids[index] in ax.get_title() and len(_scatters(ax)) == 2
    assert titles[0].startswith("best 1") and titles[2].startswith("worst 1")
    plt.close(fig)
    small = widgets.gallery(r, data_dir, n=10)                    # at most the images there are
    assert len(small.axes) == 2 * len(r)
    plt.close(small)


def test_dominant_table(setup):
    data_dir, _ = setup
    table = widgets.dominant_table(widgets.load_results(PROFILE, data_dir), fraction=0.5)
    row = table.loc[("1. end-to-end", "validation")]
    assert row["worst n"] == 2 and row["mouth %"] == 100 and row["jaw %"] == 0
    assert table.loc[("3. region + box ResNet", "validation")]["jaw %"] == 100
    assert list(widgets.dominant_table(widgets.load_results(PROFILE, data_dir), points=51)
                .columns) == ["worst n", "NME %", "brows %", "nose %", "eyes %", "mouth %"]


@pytest.fixture()
def inspector(setup):
    pytest.importorskip("ipywidgets")
    data_dir, _ = setup
    return widgets.Inspector(widgets.load_results(PROFILE, data_dir), data_dir, "end_to_end",
                             "validation")


def test_inspector_starts_on_the_worst_image(inspector):
    case = inspector.current()
    r = inspector.results["end_to_end"]["validation"]
    assert (case.approach, case.split, case.position) == ("end_to_end", "validation", 0)
    assert case.index == int(np.argmax(r.errors68)) and case.id == r.ids[case.index]
    assert case.error == pytest.approx(r.errors68.max()) and case.part == "mouth"
    assert inspector.slider.max == len(r) - 1
    assert "mouth" in inspector.html.value and case.id in inspector.html.value


def test_inspector_slider_updates_the_case_and_the_figure(inspector):
    r = inspector.results["end_to_end"]["validation"]
    order = widgets.ranked(r)
    for position in (3, 1):
        inspector.slider.value = position
        case = inspector.current()
        index = int(order[position])
        assert (case.position, case.index, case.id) == (position, index, r.ids[index])
        ax_image, ax_bars = inspector.figure.axes
        gt_dots, pred_crosses = _scatters(ax_image)
        np.testing.assert_allclose(gt_dots.get_offsets(), r.gt[index] - 1 - inspector.offset)
        np.testing.assert_allclose(pred_crosses.get_offsets(), r.points[index] - 1 - inspector.offset)
        assert r.ids[index] in ax_image.get_title() and case.id in inspector.html.value
    assert inspector.show(99).position == len(r) - 1             # clipped
    assert inspector.slider.value == len(r) - 1


def test_inspector_order_and_points_toggles(inspector):
    r = inspector.results["end_to_end"]["validation"]
    inspector.order_buttons.value = "best first"
    assert inspector.current().index == int(np.argmin(r.errors68))
    inspector.slider.value = 0
    inspector.points_buttons.value = 51
    case = inspector.current()
    assert case.points == 51 and case.error == pytest.approx(r.errors51[case.index])
    assert [t.get_text() for t in inspector.figure.axes[1].get_yticklabels()] == \
        ["brows", "nose", "eyes", "mouth"]


def test_inspector_dropdowns_update_the_slider_range(inspector):
    assert list(inspector.split_dropdown.options) == ["train", "validation"]
    inspector.slider.value = 2
    inspector.split_dropdown.value = "train"
    assert inspector.slider.max == 2 and inspector.slider.value == 0   # 3 train images
    assert inspector.current().split == "train" and inspector.current().part == "mouth"
    inspector.approach_dropdown.value = "box"                        # has only validation
    assert list(inspector.split_dropdown.options) == ["validation"]
    assert inspector.split_dropdown.value == "validation" and inspector.slider.max == 3
    case = inspector.current()
    assert (case.approach, case.split, case.part) == ("box", "validation", "jaw")
    assert case.index == 0                                           # jaw moved most on image 0
    inspector.select("end_to_end", "train")
    assert inspector.approach_dropdown.value == "end_to_end" and inspector.slider.max == 2
    with pytest.raises(KeyError):
        inspector.select("cascade")


def test_inspect_builds_and_displays(setup, monkeypatch):
    pytest.importorskip("ipywidgets")
    data_dir, _ = setup
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a))
    inspector = widgets.inspect(PROFILE, data_dir, approach="box")
    assert shown == [(inspector.widget,)]
    assert inspector.current().approach == "box" and inspector.current().split == "validation"
    (output,) = inspector.output.outputs                          # the case, as a PNG
    png = base64.b64decode(output["data"]["image/png"])
    assert output["output_type"] == "display_data" and png.startswith(b"\x89PNG")
    inspector.slider.value = 1
    (after,) = inspector.output.outputs
    assert after["data"]["image/png"] != output["data"]["image/png"]
