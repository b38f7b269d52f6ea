"""Figures (fkd_utils.plots) with the Agg backend: what is drawn is what was given."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from fkd_utils import metrics, paths, plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_ced_lines_are_the_ced_on_the_grid():
    rng = np.random.default_rng(0)
    errors = {"ours": rng.uniform(0, 0.1, 50), "theirs": rng.gamma(2, 0.02, 80)}
    fig, ax = plt.subplots()
    lines = plots.plot_ced(ax, errors)
    assert len(lines) == 2
    grid = np.arange(161) * 0.0005                       # 0, 0.0005, ..., 0.08
    for line, (name, e) in zip(lines, errors.items()):
        assert line.get_label() == name
        np.testing.assert_allclose(line.get_xdata(), grid, atol=1e-12)
        np.testing.assert_allclose(line.get_ydata(), metrics.ced(e, grid))
        # And the CED itself, computed here independently.
        np.testing.assert_allclose(line.get_ydata(), [(e <= t).mean() for t in grid])
    assert ax.get_xlim() == (0, 0.08) and ax.get_ylim() == (0, 1)


def test_plot_ced_styles_and_xmax():
    fig, ax = plt.subplots()
    (line,) = plots.plot_ced(ax, {"a": [0.01, 0.2]}, xmax=0.1, styles={"a": {"color": "k"}})
    assert line.get_color() == "k"
    assert len(line.get_xdata()) == 201 and line.get_xdata()[-1] == pytest.approx(0.1)
    assert line.get_ydata()[-1] == 0.5


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_show_keypoints_scatter_offsets_are_the_points(dtype):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 50, 3)).astype(dtype)
    if dtype == np.float32:
        image /= 255
    gt, pred = rng.uniform(0, 40, (68, 2)), rng.uniform(0, 40, (68, 2))
    fig, ax = plt.subplots()
    plots.show_keypoints(ax, image, gt=gt, pred=pred, title="face")
    assert len(ax.collections) == 2
    np.testing.assert_allclose(ax.collections[0].get_offsets(), gt)
    np.testing.assert_allclose(ax.collections[1].get_offsets(), pred)
    assert ax.get_title() == "face"
    shown = ax.images[0].get_array()
    assert shown.shape == image.shape
    np.testing.assert_allclose(np.asarray(shown), image)
    # Points are 0-based pixel centres: pixel (0, 0) spans [-0.5, 0.5], as imshow draws it.
    extent = ax.images[0].get_extent()
    assert extent == pytest.approx([-0.5, 49.5, 39.5, -0.5])


def test_show_keypoints_only_ground_truth():
    fig, ax = plt.subplots()
    plots.show_keypoints(ax, np.zeros((8, 8, 3), np.uint8), gt=[[1, 2], [3, 4]])
    assert len(ax.collections) == 1
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[1, 2], [3, 4]])


@pytest.mark.parametrize("n, cols", [(1, 4), (5, 4), (8, 4), (3, 2)])
def test_keypoint_grid_one_panel_per_image(n, cols):
    rng = np.random.default_rng(n)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)]
    gts = [rng.uniform(0, 16, (68, 2)) for _ in range(n)]
    preds = [rng.uniform(0, 16, (68, 2)) for _ in range(n)]
    titles = [f"face {i}" for i in range(n)]
    fig = plots.keypoint_grid(images, gts, preds, titles, cols=cols)
    with_images = [ax for ax in fig.axes if ax.images]
    assert len(with_images) == n
    for i, ax in enumerate(with_images):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), images[i])
        np.testing.assert_allclose(ax.collections[0].get_offsets(), gts[i])
        np.testing.assert_allclose(ax.collections[1].get_offsets(), preds[i])
        assert ax.get_title() == titles[i]
    # Panels beyond the images are empty.
    for ax in fig.axes:
        if not ax.images:
            assert not ax.collections and not ax.axison


def test_save_fig_writes_under_fkd_home(fkd_home):
    assert paths.figures_dir() == fkd_home / "figures"
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    assert plots.save_fig("99_test_figure", fig) is None   # a notebook cell echoes no path
    path = fkd_home / "figures" / "99_test_figure.png"
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 10
    path.unlink()


@pytest.mark.parametrize("name", ["test", "1_test", "001_test", "01-test", "01_Test",
                                  "01_test.png", "01_", "ab_test", "01_test figure",
                                  "../01_test", "01_test/../x"])
def test_save_fig_rejects_bad_names(fkd_home, name):
    fig, _ = plt.subplots()
    figures = fkd_home / "figures"
    before = sorted(figures.rglob("*")) if figures.exists() else []  # (other tests save figures)
    with pytest.raises(ValueError, match="NN_snake_case"):
        plots.save_fig(name, fig)
    assert (sorted(figures.rglob("*")) if figures.exists() else []) == before


def test_plot_history():
    fig, ax = plt.subplots()
    lines = plots.plot_history(ax, {"loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.6, 0.4]})
    assert [ln.get_label() for ln in lines] == ["loss", "val_loss"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), [1.2, 0.6, 0.4])
    assert ax.get_yscale() == "log"


def _face():
    rng = np.random.default_rng(3)
    return rng.uniform(10, 90, (68, 2)), rng.uniform(0, 1, (100, 100, 3))


def test_draw_markup_colours_parts_and_numbers_every_point():
    from fkd_utils.markup import PARTS
    points, image = _face()
    fig, ax = plt.subplots()
    scatters = plots.draw_markup(ax, image, points)
    assert list(scatters) == list(PARTS)
    for part, scatter in scatters.items():
        np.testing.assert_allclose(scatter.get_offsets(), points[list(PARTS[part])])
        np.testing.assert_allclose(scatter.get_facecolor()[0],
                                   matplotlib.colors.to_rgba(plots.PART_COLOURS[part]))
    labels = {int(t.get_text()): t.xy for t in ax.texts}
    assert sorted(labels) == list(range(68))
    for i, xy in labels.items():
        np.testing.assert_allclose(xy, points[i])
    assert len({tuple(s.get_facecolor()[0]) for s in scatters.values()}) == len(PARTS)
    ax.clear()
    plots.draw_markup(ax, image, points, numbers=False)
    assert not ax.texts
    ax.clear()
    scatters = plots.draw_markup(ax, image, points, margin=0.1)
    x0, y0, x1, y1 = plots.crop_box(points, image.shape, 0.1)
    assert ax.get_images()[0].get_array().shape[:2] == (y1 - y0, x1 - x0)
    np.testing.assert_allclose(scatters["jaw"].get_offsets(), points[:17] - [x0, y0])
    with pytest.raises(ValueError, match="68, 2"):
        plots.draw_markup(ax, image, points[:51])


def test_error_lines_join_truth_to_prediction_and_eye_line_is_the_normaliser():
    gt, _ = _face()
    pred = gt + np.random.default_rng(4).normal(0, 2, gt.shape)
    fig, ax = plt.subplots()
    segments = plots.draw_error_lines(ax, pred, gt).get_segments()
    assert len(segments) == 68
    for i, seg in enumerate(segments):
        np.testing.assert_allclose(seg, [gt[i], pred[i]])
    lengths = np.linalg.norm(np.diff(np.array(segments), axis=1)[:, 0], axis=-1)
    line = plots.draw_eye_distance(ax, gt)
    np.testing.assert_allclose(np.column_stack(line.get_data()), gt[[36, 45]])
    d = np.hypot(*(gt[36] - gt[45]))
    assert f"{d:.1f} px" in line.get_label()
    # Eq. 1 from the drawn segments equals the package's NME
    assert lengths.mean() / d == pytest.approx(metrics.nme(pred[None], gt[None])[0])


def test_each_approach_has_one_colour_in_every_figure():
    from fkd_utils import challenge, report
    errors = {report.label(name): np.linspace(0, 0.1, 20) for name in plots.APPROACH_COLOURS}
    fig, (a, b) = plt.subplots(1, 2)
    by_label = {ln.get_label(): ln.get_color() for ln in plots.plot_ced(a, errors)}
    # the same approaches in another figure, in another order and by their short names
    names = list(reversed(plots.APPROACH_COLOURS))
    by_name = {ln.get_label(): ln.get_color()
               for ln in plots.plot_ced(b, {n: np.linspace(0, 0.1, 20) for n in names})}
    for name in plots.APPROACH_COLOURS:
        assert by_label[report.label(name)] == by_name[name] == plots.APPROACH_COLOURS[name]
    assert len(set(plots.APPROACH_COLOURS.values())) == len(plots.APPROACH_COLOURS)
    x = np.linspace(0, 0.35, 701)
    winners = challenge.plot_challenge_ced(a, {m: (x, x) for m in plots.WINNER_COLOURS})
    colours = {ln.get_color() for ln in winners}
    assert colours == set(plots.WINNER_COLOURS.values())
    assert not colours & set(plots.APPROACH_COLOURS.values())


def test_ced_legend_sits_below_the_axes_and_axes_say_their_units():
    fig, ax = plt.subplots()
    plots.plot_ced(ax, {"1. end-to-end": [0.01, 0.05], "oracle": [0.02]})
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0      # under the axes: off the curves
    assert legend.y1 <= ax.xaxis.label.get_window_extent().y0   # and under the axis label
    assert "outer-eye-corner" in ax.get_xlabel() and ax.get_ylabel() == "fraction of images"


def test_ced_panels_titles_do_not_overlap():
    errors = {"a": np.linspace(0, 0.1, 9), "b": np.linspace(0, 0.05, 9), "_time_s": {}}
    titles = ["head and schedule, full budget (cascade stage 2)", "target standardisation",
              "a long setting name that would run into its neighbour's title"]
    fig = plots.ced_panels({t: errors for t in titles})
    fig.canvas.draw()
    boxes = [ax.title.get_window_extent() for ax in fig.axes]
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 < right.x0
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)     # "_time_s" is not a curve


def test_plot_history_names_the_loss_and_its_unit():
    fig, ax = plt.subplots()
    plots.plot_history(ax, {"loss": [2.0, 1.0], "loss_name": "l1"})
    assert ax.get_ylabel() == "loss (L1, crop px)" and ax.get_xlabel() == "epoch"
