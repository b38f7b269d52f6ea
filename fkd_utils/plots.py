"""Figures: keypoints over images, CED curves, training curves, one ``save_fig``
(introduced in notebook 01).

Ground truth is drawn as green points and predictions as red crosses, as in the paper's Fig. 8.
"""
import re

import matplotlib.pyplot as plt
import numpy as np

from . import paths
from .metrics import ced, threshold_grid

GT_STYLE = dict(c="lime", s=8, marker="o", linewidths=0, label="ground truth")
PRED_STYLE = dict(c="red", s=14, marker="x", linewidths=1.0, label="prediction")


def save_fig(name, fig=None, dpi=110):
    """Save a figure as ``figures/<name>.png``; ``name`` starts with its notebook's number
    (e.g. ``"01_preprocessed_examples"``). Returns the path."""
    if not re.fullmatch(r"\d\d_[a-z0-9_]+", name):
        raise ValueError(f"figure name {name!r} must look like 'NN_snake_case' (its notebook's number first)")
    fig = fig or plt.gcf()
    path = paths.figures_dir() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


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
    """CED curves of per-image errors, one per method, on the 300-W grid; returns the lines."""
    grid = threshold_grid(xmax, step)
    lines = []
    for name, errors in errors_by_method.items():
        style = (styles or {}).get(name, {})
        (line,) = ax.plot(grid, ced(errors, grid), label=name, **style)
        lines.append(line)
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, 1)
    ax.set_xlabel("normalised point-to-point error")
    ax.set_ylabel("fraction of images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return lines


def plot_history(ax, history, title=None):
    """Training and validation loss per epoch (log scale); returns the lines."""
    lines = []
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if history.get(key):
            epochs = np.arange(1, len(history[key]) + 1)
            lines += ax.plot(epochs, history[key], style, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return lines
