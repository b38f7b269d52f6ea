"""Figures: keypoints over images, the 68-point markup (paper Fig. 1), error lines and the
outer-eye distance (Eq. 1), CED curves, training curves, one ``save_fig`` (introduced in
notebook 01).

Ground truth is drawn as green points and predictions as red crosses, as in the paper's Fig. 8.
Every approach has one colour in every figure (:data:`APPROACH_COLOURS`, by name or by its
table label); the 300-W challenge winners are drawn in greys (:data:`WINNER_COLOURS`).
"""
import re
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from . import paths
from .markup import OUTER_EYE_CORNERS, PARTS
from .metrics import ced, threshold_grid
from .report import LABELS

GT_STYLE = dict(c="lime", s=8, marker="o", linewidths=0, label="ground truth")
PRED_STYLE = dict(c="red", s=14, marker="x", linewidths=1.0, label="prediction")
#: One colour per face part in the markup figure (paper Fig. 1).
PART_COLOURS = {"jaw": "tab:blue", "brows": "tab:orange", "nose": "tab:green", "eyes": "tab:red",
                "mouth": "tab:purple"}
ERROR_LINE_STYLE = dict(color="yellow", lw=0.8, alpha=0.9)
EYE_LINE_STYLE = dict(color="cyan", lw=1.5, ls="--")

#: One colour per approach, in every figure (the paper's approaches first, in its order).
APPROACH_COLOURS = {
    "mean_shape": "#7f7f7f", "end_to_end": "#1f77b4", "region": "#ff7f0e", "box": "#2ca02c",
    "oracle": "#9467bd", "cascade": "#d62728", "cascade_predict": "#e377c2",
    "cascade_own_detector": "#8c564b", "cascade_full_own_detector": "#bcbd22",
    "dlib_300w_boxes": "#17becf", "dlib_own_detector": "#393b79",
}
#: The 300-W challenge winners (dashed, greys: they are not ours).
WINNER_COLOURS = {"Fan et al.": "#000000", "Zhou et al.": "#404040", "Yan et al.": "#707070",
                  "Deng et al.": "#a0a0a0"}
_BY_LABEL = {LABELS[name]: colour for name, colour in APPROACH_COLOURS.items()}
CED_XLABEL = "error (fraction of the outer-eye-corner distance)"
CED_YLABEL = "fraction of images"


def save_fig(name, fig=None, dpi=110):
    """Save a figure as ``figures/<name>.png``; ``name`` starts with its notebook's number
    (e.g. ``"01_preprocessed_examples"``). Returns None, so that a notebook cell ending with
    it shows the figure and no path; the file is ``paths.figures_dir() / f"{name}.png"``."""
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", name):
        raise ValueError(f"figure name {name!r} must look like 'NN_snake_case' (its notebook's number first)")
    fig = fig or plt.gcf()
    path = paths.figures_dir() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def colour(name):
    """The fixed colour of an approach (its name or its table label) or a challenge winner;
    None for anything else (an ablation's variant), which then takes the next default colour."""
    return (APPROACH_COLOURS.get(name) or _BY_LABEL.get(name) or WINNER_COLOURS.get(name)
            or _BY_LABEL.get(str(name).rsplit(" (", 1)[0]))  # a label with its setting added


def legend_below(ax, fontsize=7, ncol=1):
    """The legend under the axes and their x label, off the curves (half an inch below the
    axes, whatever their height)."""
    from matplotlib.transforms import ScaledTranslation
    below = ax.transAxes + ScaledTranslation(0, -0.5, ax.figure.dpi_scale_trans)
    return ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, 0),
                     bbox_transform=below, ncol=ncol, frameon=False)


def show_keypoints(ax, image, gt=None, pred=None, title=None):
    """An image with ground truth (green dots) and/or predicted points (red crosses).

    Points are 0-based pixel centres of ``image`` (as the crops use).
    """
    image = np.asarray(image)
    ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0, 1))
    if gt is not None:
        ax.scatter(*np.asarray(gt).T, **GT_STYLE)
    if pred is not None:
        ax.scatter(*np.asarray(pred).T, **PRED_STYLE)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return ax


def keypoint_grid(images, gts=None, preds=None, titles=None, cols=4, size=2.2):
    """A grid of :func:`show_keypoints` panels; returns the figure."""
    n = len(images)
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.set_axis_off()
            continue
        show_keypoints(ax, images[i], None if gts is None else gts[i],
                       None if preds is None else preds[i], None if titles is None else titles[i])
    fig.tight_layout()
    return fig


def plot_ced(ax, errors_by_method, xmax=0.08, step=0.0005, styles=None):
    """CED curves of per-image errors, one per method, on the 300-W grid; returns the lines.

    Approaches take their fixed colour (:func:`colour`) unless ``styles`` says otherwise;
    the legend goes under the axes."""
    grid = threshold_grid(xmax, step)
    lines = []
    for name, errors in errors_by_method.items():
        style = {"color": colour(name), **(styles or {}).get(name, {})}
        if style["color"] is None:
            del style["color"]
        (line,) = ax.plot(grid, ced(errors, grid), label=name, **style)
        lines.append(line)
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, 1)
    ax.set_xlabel(CED_XLABEL)
    ax.set_ylabel(CED_YLABEL)
    ax.grid(alpha=0.3)
    legend_below(ax)
    return lines


def ced_panels(panels, width=4.3, height=3.4, title_width=32):
    """One CED panel per entry of ``{title: {method: per-image errors}}`` (keys starting with
    "_", e.g. training times, are skipped), side by side, titles wrapped so they never meet.
    Returns the figure."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    for ax, (title, errors) in zip(axes[0], panels.items()):
        plot_ced(ax, {k: v for k, v in errors.items() if not str(k).startswith("_")})
        ax.set_title(textwrap.fill(title, title_width), fontsize=9)
    fig.tight_layout()
    return fig


LOSS_UNITS = {"mse": "MSE, crop px²", "l1": "L1, crop px", "wing": "Wing, crop px"}


def plot_history(ax, history, title=None):
    """Training and validation loss per epoch (log scale); returns the lines. The loss's
    name and unit label the axis when the history says which loss it is (``"loss_name"``)."""
    lines = []
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if history.get(key):
            epochs = np.arange(1, len(history[key]) + 1)
            lines += ax.plot(epochs, history[key], style, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    name = history.get("loss_name")
    ax.set_ylabel(f"loss ({LOSS_UNITS.get(name, name)})" if name else "loss")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return lines


def crop_box(points, shape, margin=0.25):
    """(x0, y0, x1, y1) integer pixel bounds (end-exclusive) of a crop around 0-based points,
    with a margin of ``margin`` times the longer side, clipped to an image of ``shape``."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    h, w = shape[:2]
    if not len(pts):
        return 0, 0, w, h
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    bounds = (int(np.floor(x0 - pad)), int(np.floor(y0 - pad)),
              int(np.ceil(x1 + pad)) + 1, int(np.ceil(y1 + pad)) + 1)
    x0, y0 = min(max(bounds[0], 0), w - 1), min(max(bounds[1], 0), h - 1)
    x1, y1 = max(min(bounds[2], w), x0 + 1), max(min(bounds[3], h), y0 + 1)
    return x0, y0, x1, y1


def draw_markup(ax, image, points, numbers=True, margin=None, fontsize=5):
    """The 68-point iBUG markup (paper Fig. 1): ``points`` (68, 2, 0-based pixels of ``image``)
    coloured by part, each numbered with its 0-based index when ``numbers``; with ``margin``,
    the image is cropped around the points (see :func:`crop_box`). Returns ``{part: scatter}``."""
    points = np.asarray(points, np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"points must be (68, 2), got {points.shape}")
    if margin is not None:
        x0, y0, x1, y1 = crop_box(points, np.shape(image), margin)
        image, points = np.asarray(image)[y0:y1, x0:x1], points - [x0, y0]
    show_keypoints(ax, image)
    scatters = {}
    for part, indices in PARTS.items():
        scatters[part] = ax.scatter(*points[list(indices)].T, s=10, c=PART_COLOURS[part],
                                    label=f"{part} {indices[0]}-{indices[-1]}")
    if numbers:
        number_points(ax, points, fontsize)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return scatters


def number_points(ax, points, fontsize=5):
    """Each point's 0-based index beside it, white with a dark outline (readable on any
    skin or background). Returns the texts."""
    from matplotlib.patheffects import withStroke
    outline = [withStroke(linewidth=1.5, foreground="black")]
    return [ax.annotate(str(i), (x, y), xytext=(2, 2), textcoords="offset points",
                        fontsize=fontsize, color="white", path_effects=outline)
            for i, (x, y) in enumerate(np.asarray(points, np.float64))]


def draw_error_lines(ax, pred, gt, **style):
    """A segment from each true point to its prediction (the distances Eq. 1 sums); points are
    (68, 2) 0-based pixels. Returns the LineCollection."""
    from matplotlib.collections import LineCollection
    segments = np.stack([np.asarray(gt, np.float64), np.asarray(pred, np.float64)], axis=1)
    return ax.add_collection(LineCollection(segments, **{**ERROR_LINE_STYLE, **style}))


def draw_eye_distance(ax, gt, **style):
    """The outer-eye-corner segment (points 36 and 45 of the truth), Eq. 1's normaliser,
    labelled with its length in pixels. Returns the line."""
    gt = np.asarray(gt, np.float64)
    ends = gt[list(OUTER_EYE_CORNERS)]
    (line,) = ax.plot(*ends.T, **{**EYE_LINE_STYLE, **style},
                      label=f"outer-eye distance {np.linalg.norm(ends[0] - ends[1]):.1f} px")
    return line
