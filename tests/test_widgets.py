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


def _boxes(gt):
    """Face boxes around each shape and four region boxes (the eye, nose and mouth points'
    boxes), 1-based like the saved ones."""
    from fkd_utils.markup import REGIONS
    face = np.concatenate([gt.min(axis=1) - 3, gt.max(axis=1) + 3], axis=-1)
    regions = np.stack([np.concatenate([gt[:, list(p)].min(axis=1), gt[:, list(p)].max(axis=1)],
                                       axis=-1) for p in REGIONS.values()], axis=1)
    return {"face_boxes": face, "region_boxes": regions}


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
                              _shift(gt, JAW, _moves(gt, np.arange(len(ids), 0, -1))),
                              **_boxes(gt))
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
    from matplotlib.collections import PathCollection
    return [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]


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
        assert list(inspector.axes) == ["face", "bars", "ced"]
        ax_image = inspector.axes["face"]
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
    assert [t.get_text() for t in inspector.axes["bars"].get_yticklabels()] == \
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


def test_load_results_reads_the_boxes_used(setup):
    data_dir, truth = setup
    results = widgets.load_results(PROFILE, data_dir)
    box, end_to_end = results["box"]["validation"], results["end_to_end"]["validation"]
    expected = _boxes(truth["validation"][2])
    np.testing.assert_allclose(box.face_boxes, expected["face_boxes"])
    np.testing.assert_allclose(box.region_boxes, expected["region_boxes"])
    assert end_to_end.face_boxes is None and end_to_end.region_boxes is None   # not saved
    used = widgets.used_boxes(box, 1)
    np.testing.assert_allclose(used["face"], expected["face_boxes"][1:2] - 1)
    assert used["regions"].shape == (4, 4)
    assert widgets.used_boxes(end_to_end, 1)["regions"].shape == (0, 4)


def _lines(ax):
    from matplotlib.collections import LineCollection
    return [c for c in ax.collections if isinstance(c, LineCollection)]


def test_draw_face_layers(setup):
    data_dir, _ = setup
    r = widgets.load_results(PROFILE, data_dir)["box"]["validation"]
    fig, ax = plt.subplots()
    offset = widgets.draw_face(ax, r, 0, data_dir, layers=widgets.LAYERS)
    gt_dots, pred_crosses = _scatters(ax)
    np.testing.assert_allclose(pred_crosses.get_offsets(), r.points[0] - 1 - offset)
    (lines,) = _lines(ax)
    np.testing.assert_allclose(np.array(lines.get_segments()),
                               np.stack([r.gt[0], r.points[0]], axis=1) - 1 - offset)
    assert sorted(int(t.get_text()) for t in ax.texts) == list(range(68))
    rects = {p.get_gid(): [] for p in ax.patches}
    for p in ax.patches:
        rects[p.get_gid()].append([p.get_x(), p.get_y(), p.get_x() + p.get_width(),
                                   p.get_y() + p.get_height()])
    np.testing.assert_allclose(rects["face box"], r.face_boxes[:1] - 1 - np.tile(offset, 2))
    np.testing.assert_allclose(rects["regions box"], r.region_boxes[0] - 1 - np.tile(offset, 2))
    ax.clear()
    widgets.draw_face(ax, r, 0, data_dir, layers=("predictions",))
    assert len(_scatters(ax)) == 1 and not _lines(ax) and not ax.texts and not ax.patches
    with pytest.raises(ValueError, match="unknown layers"):
        widgets.draw_face(ax, r, 0, data_dir, layers=("wings",))
    plt.close(fig)


def test_filtered_keeps_one_subset_and_one_dominant_part():
    gt = np.tile(np.random.default_rng(1).uniform(20, 80, (1, 68, 2)), (4, 1, 1))
    points = _shift(gt, MOUTH, [1, 4, 0, 0])
    points = _shift(points, JAW, [0, 0, 3, 2])
    r = widgets.Result.from_arrays("x", "test", list("abcd"), points, gt, ["p", "q", "p", "q"])
    assert list(widgets.filtered(r)) == list(widgets.ranked(r))
    assert list(widgets.filtered(r, subset="q")) == [1, 3]
    assert list(widgets.filtered(r, part="jaw")) == [2, 3]
    assert list(widgets.filtered(r, part="mouth", worst_first=False)) == [0, 1]
    assert list(widgets.filtered(r, subset="p", part="mouth")) == [0]
    assert len(widgets.filtered(r, subset="nowhere")) == 0


def test_inspector_compares_two_approaches_on_the_same_face(inspector):
    r, other = inspector.results["end_to_end"]["validation"], inspector.results["box"]["validation"]
    assert [v for _, v in inspector.compare_dropdown.options] == [None, "box"]
    before = inspector.html.value
    inspector.compare_dropdown.value = "box"
    case, compared = inspector.current(), inspector.compared()
    assert compared.index == case.index and compared.id == case.id
    assert compared.approach == "box" and compared.error == pytest.approx(other.errors68[case.index])
    assert list(inspector.axes) == ["face", "compare", "bars", "ced"]
    assert "3. region + box ResNet" in inspector.axes["compare"].get_title()
    _, crosses = _scatters(inspector.axes["compare"])
    face_offset = widgets.crop_box(np.concatenate([r.gt[case.index], r.points[case.index]]) - 1,
                                   (96, 96))[:2]
    assert len(crosses.get_offsets()) == 68
    assert inspector.html.value != before and inspector.html.value.count("<tr>") == 7
    assert f"{100 * other.parts['jaw'][case.index]:.2f}" in inspector.html.value
    assert face_offset == tuple(inspector.offset)
    inspector.slider.value = 2                                      # both follow the slider
    assert inspector.compared().index == inspector.current().index == int(widgets.ranked(r)[2])
    inspector.select("box", compare="box")                            # not with itself
    assert inspector.compared() is None
    inspector.select("end_to_end", "validation", compare="box")
    inspector.split_dropdown.value = "train"                         # box has no train split
    assert inspector.compare_dropdown.value is None and inspector.compared() is None
    assert list(inspector.axes) == ["face", "bars", "ced"]


def test_inspector_ced_marks_the_face(inspector):
    r = inspector.results["end_to_end"]["validation"]
    inspector.slider.value = 1
    case = inspector.current()
    ax = inspector.axes["ced"]
    line, marker = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), widgets.metrics.ced(r.errors68, line.get_xdata()))
    x, y = marker.get_xdata()[0], marker.get_ydata()[0]
    assert x == pytest.approx(case.error)
    assert y == pytest.approx(np.mean(r.errors68 <= case.error))   # 3 of 4 at position 1
    assert y == pytest.approx(0.75)
    assert ax.get_xlim()[1] >= case.error
    assert widgets.ced_xmax([0.01, 0.05]) == pytest.approx(0.08)
    assert widgets.ced_xmax([0.01, 0.2]) == pytest.approx(0.22)


def test_inspector_previous_next_and_filters(inspector):
    r = inspector.results["end_to_end"]["validation"]
    order = widgets.ranked(r)
    assert inspector.previous_button.disabled and not inspector.next_button.disabled
    inspector.next_button.click()
    inspector.next_button.click()
    assert inspector.slider.value == 2 and inspector.current().index == int(order[2])
    inspector.previous_button.click()
    assert inspector.current().position == 1
    inspector.step(10)
    assert inspector.current().position == 3 and inspector.next_button.disabled
    assert inspector.subset_dropdown.options == ("all", "helen")
    inspector.part_dropdown.value = "jaw"                            # end-to-end moved the mouth
    assert inspector.current() is None and "no image matches" in inspector.html.value
    assert inspector.output.outputs == ()
    inspector.part_dropdown.value = "mouth"
    assert inspector.slider.max == 3 and inspector.current().index == int(order[0])
    inspector.points_buttons.value = 51                              # no jaw at 51 points
    assert "jaw" not in inspector.part_dropdown.options and inspector.part_dropdown.value == "mouth"


def test_inspector_subset_filter_on_mixed_subsets(setup):
    pytest.importorskip("ipywidgets")
    data_dir, truth = setup
    r = widgets.load_results(PROFILE, data_dir)["end_to_end"]["validation"]
    mixed = widgets.Result.from_arrays(r.approach, r.split, r.ids, r.points, r.gt,
                                       ["helen", "lfpw", "helen", "lfpw"])
    inspector = widgets.Inspector({"end_to_end": {"validation": mixed}}, data_dir)
    assert inspector.subset_dropdown.options == ("all", "helen", "lfpw")
    inspector.subset_dropdown.value = "lfpw"
    assert inspector.slider.max == 1
    assert [inspector.show(k).index for k in (0, 1)] == [3, 1]        # worst first, lfpw only
    assert "position 2/2" in inspector.html.value


def test_inspector_toggles_redraw_the_layers(inspector):
    inspector.select("box")
    ax = inspector.axes["face"]
    assert len(_scatters(ax)) == 2 and not _lines(ax) and not ax.patches and not ax.texts
    for name in ("error lines", "point numbers", "boxes"):
        inspector.layer_boxes[name].value = True
    ax = inspector.axes["face"]
    assert len(_lines(ax)) == 1 and len(ax.texts) == 68 and len(ax.patches) == 1 + 4
    inspector.layer_boxes["true points"].value = False
    inspector.layer_boxes["predictions"].value = False
    assert not _scatters(inspector.axes["face"])
    assert inspector.layers == ("error lines", "point numbers", "boxes")
