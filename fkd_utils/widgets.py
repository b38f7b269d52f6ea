"""Worst predictions: per-image errors, best/worst galleries and an interactive inspector
(introduced in notebook 07).

* :func:`load_results` reads every ``results/<profile>/<approach>_<split>.npz`` present and
  pairs it with the ground truth (aligned by ids) and its errors: :class:`Result`.
* :func:`ranked` orders the images by error, :func:`dominant_part` says which part (jaw,
  brows, nose, eyes, mouth) carries most of an image's error.
* :func:`draw_case` draws one image (cropped around the face) with the ground truth (green
  points) and the prediction (red crosses), and its per-part errors; :func:`gallery` draws the
  best and worst images of one approach, like the paper's Fig. 8.
* :class:`Inspector` is an ipywidgets browser over the ranking. Its logic lives in plain
  methods (:meth:`Inspector.select`, :meth:`Inspector.show`, :meth:`Inspector.current`), so it
  runs, and is tested, without a browser; :func:`inspect` builds and displays one.

Errors are the 300-W ones (:mod:`fkd_utils.metrics`): distances divided by the ground truth's
outer-eye-corner distance. Points are 1-based (``.pts``) in :class:`Result` and 0-based pixel
centres once drawn.
"""
import base64
import html
import io as _bytes_io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import data, metrics, paths, pipeline, report
from .io import DataError, pts_to_pixels, read_image
from .plots import show_keypoints

#: Display order of the approaches (others follow, sorted).
APPROACH_ORDER = ("mean_shape",) + tuple(pipeline.APPROACHES) + tuple(pipeline.OUR_APPROACHES)
#: Orders of the inspector's ranking.
ORDERS = ("worst first", "best first")
#: Margin around the union box of ground truth and prediction, as a fraction of its longer side.
CROP_MARGIN = 0.25
#: Colours of the per-part bars: the dominant part, the others.
DOMINANT_COLOUR, PART_COLOUR = "tab:red", "tab:gray"
#: Where each approach's predictions come from (for the "run these first" message).
MADE_BY = {"mean_shape": "02", "end_to_end": "02", "region": "03", "box": "04", "oracle": "04"}


@dataclass
class Result:
    """Predictions of one approach on one split, with the ground truth and the errors.

    ``points`` and ``gt`` are (N, 68, 2) in 1-based ``.pts`` pixels; ``errors68`` and
    ``errors51`` are per-image NMEs; ``parts`` maps part name -> per-image error.
    """
    approach: str
    split: str
    ids: np.ndarray
    points: np.ndarray
    gt: np.ndarray
    subsets: np.ndarray
    errors68: np.ndarray = field(repr=False)
    errors51: np.ndarray = field(repr=False)
    parts: dict = field(repr=False)

    @classmethod
    def from_arrays(cls, approach, split, ids, points, gt, subsets):
        points, gt = np.asarray(points, np.float64), np.asarray(gt, np.float64)
        return cls(approach, split, np.asarray(ids).astype(str), points, gt, np.asarray(subsets),
                   metrics.nme(points, gt, 68), metrics.nme(points, gt, 51),
                   metrics.part_errors(points, gt))

    def __len__(self):
        return len(self.ids)

    def errors(self, points=68):
        """Per-image NME over 68 or 51 points."""
        if points not in (68, 51):
            raise ValueError(f"points must be 68 or 51, got {points}")
        return self.errors68 if points == 68 else self.errors51


def part_breakdown(result, points=68):
    """The per-part errors that count for ``points``: all five parts for 68 points, no jaw
    for 51 (the jaw is not among the 51 points)."""
    return {k: v for k, v in result.parts.items() if points == 68 or k != "jaw"}


def _parse_name(path):
    """(approach, split) of ``<approach>_<split>.npz``, or None for other files."""
    if path.suffix != ".npz" or "." in path.stem:        # e.g. a half-written .tmp.npz
        return None
    approach, _, split = path.stem.rpartition("_")
    return (approach, split) if approach and split in data.SPLITS else None


def _order_key(approach):
    known = APPROACH_ORDER.index(approach) if approach in APPROACH_ORDER else len(APPROACH_ORDER)
    return known, approach


def load_results(profile, data_dir, approaches=None, splits=None):
    """Every predictions file of a profile, as ``{approach: {split: Result}}``.

    ``data_dir`` is the data the predictions were made on (empty: the profile's default).
    ``approaches`` / ``splits`` keep only those. Predictions are aligned to the ground truth
    by id; a file whose ids do not match the split raises :class:`DataError` (predictions
    made on another data directory). No file at all raises a :class:`DataError` saying which
    notebooks write them.
    """
    from .profiles import get_profile
    name = get_profile(profile).name
    folder = paths.results_dir(name)
    found = [_parse_name(path) for path in folder.glob("*.npz")] if folder.is_dir() else []
    found = sorted(((a, s) for a, s in filter(None, found)
                    if (approaches is None or a in approaches) and (splits is None or s in splits)),
                   key=lambda item: (_order_key(item[0]), data.SPLITS.index(item[1])))
    if not found:
        wanted = sorted({MADE_BY.get(a, "02-04") for a in approaches or MADE_BY})
        raise DataError(f"{folder}: no predictions files"
                        f"{'' if approaches is None else ' for ' + ', '.join(approaches)}"
                        f"{'' if splits is None else ' on ' + ', '.join(splits)}; run notebooks "
                        f"{', '.join(wanted)} first (or: fkd reproduce --profile {name} --only "
                        f"{','.join(wanted)}, on the same data)")
    data_dir = data.data_dir_for(data_dir, name)
    truth, results = {}, {}
    for approach, split in found:
        if split not in truth:
            truth[split] = data.ground_truth(data_dir, split)
        ids, subsets, gt = truth[split]
        _, points = pipeline.load_predictions(folder / f"{approach}_{split}.npz", ids=list(ids))
        results.setdefault(approach, {})[split] = Result.from_arrays(approach, split, ids, points,
                                                                     gt, subsets)
    return results


def ranked(result, points=68, worst_first=True):
    """Image indices sorted by error: worst first (default) or best first. Ties keep file
    order; images with a NaN error (a broken prediction) count as the worst."""
    errors = np.nan_to_num(result.errors(points), nan=np.inf)
    return np.argsort(-errors if worst_first else errors, kind="stable")


def dominant_part(parts, i):
    """(part name, share of the sum of the part errors) of image ``i``: the part whose mean
    point error is largest. ``parts`` maps part -> per-image error (see :func:`part_breakdown`)."""
    names = list(parts)
    values = np.array([float(parts[n][i]) for n in names])
    best = int(np.nanargmax(values)) if np.isfinite(values).any() else 0
    total = np.nansum(values)
    return names[best], float(values[best] / total) if total > 0 else 0.0


def crop_box(points, shape, margin=CROP_MARGIN):
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


def _title(result, index, points):
    return (f"{result.ids[index]}\nNME{points} {100 * result.errors(points)[index]:.2f} % · "
            f"{result.subsets[index]}")


def draw_face(ax, result, index, data_dir, title=None, margin=CROP_MARGIN):
    """One image cropped around its face, ground truth green, prediction red. Returns the crop
    offset (x0, y0): drawn points are the ``.pts`` points minus 1 minus this offset."""
    image = read_image(Path(data_dir) / result.ids[index])
    gt, pred = pts_to_pixels(result.gt[index]), pts_to_pixels(result.points[index])
    x0, y0, x1, y1 = crop_box(np.concatenate([gt, pred]), image.shape, margin)
    offset = np.array([x0, y0], np.float64)
    show_keypoints(ax, image[y0:y1, x0:x1], gt - offset, pred - offset, title)
    return offset


def draw_bars(ax, result, index, points=68):
    """Horizontal bars of the per-part errors (% of the outer-eye distance) of one image, the
    dominant part highlighted. Returns (part, share)."""
    parts = part_breakdown(result, points)
    part, share = dominant_part(parts, index)
    names = list(parts)
    values = [100 * float(parts[n][index]) for n in names]
    bars = ax.barh(names, values, color=[DOMINANT_COLOUR if n == part else PART_COLOUR for n in names])
    ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("mean point error, % of outer-eye distance", fontsize=8)
    ax.set_title(f"dominant: {part} ({100 * share:.0f} % of the part errors)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_xlim(0, max([v for v in values if np.isfinite(v)] + [1e-9]) * 1.25)
    return part, share


def draw_case(ax_image, ax_bars, result, index, data_dir, points=68):
    """One image of a :class:`Result`: the face crop with ground truth and prediction (title: id,
    NME, subset) on ``ax_image``, the per-part errors on ``ax_bars`` (may be None).

    Returns ``{"offset": (x0, y0) of the crop, "part": dominant part, "share": its share}``.
    """
    offset = draw_face(ax_image, result, index, data_dir, _title(result, index, points))
    part, share = (draw_bars(ax_bars, result, index, points) if ax_bars is not None
                   else dominant_part(part_breakdown(result, points), index))
    return {"offset": offset, "part": part, "share": share}


def gallery_cases(result, n=4, points=68):
    """(best, worst) image indices of :func:`gallery`: the ``n`` lowest errors (best first) and
    the ``n`` highest (worst first)."""
    n = max(1, min(n, len(result)))
    return ranked(result, points, worst_first=False)[:n], ranked(result, points)[:n]


def gallery(results_for_split, data_dir, n=4, points=68, size=2.6):
    """Best ``n`` (top row) and worst ``n`` (bottom row) images of one approach on one split
    (a :class:`Result`), like the paper's Fig. 8. Returns the figure (pyplot)."""
    import matplotlib.pyplot as plt
    result = results_for_split
    best, worst = gallery_cases(result, n, points)
    fig, axes = plt.subplots(2, len(best), figsize=(len(best) * size, 2 * size + 0.6), squeeze=False)
    for row, (name, indices) in enumerate((("best", best), ("worst", worst))):
        for k, (ax, index) in enumerate(zip(axes[row], indices)):
            draw_face(ax, result, index, data_dir, f"{name} {k + 1}: " + _title(result, index, points))
    fig.suptitle(f"{report.label(result.approach)} · {result.split} ({len(result)} images): best "
                 f"{len(best)} (top) and worst {len(worst)} (bottom), NME {points} points; "
                 "green: ground truth, red: prediction", fontsize=9)
    fig.tight_layout()
    return fig


def dominant_table(results, fraction=0.1, points=68, splits=None):
    """Which part dominates the error among the worst ``fraction`` of images: one row per
    approach and split, the share (%) of those images each part dominates, with their number
    and mean NME (%). A pandas DataFrame."""
    import pandas as pd
    rows = []
    for approach, by_split in results.items():
        for split, result in by_split.items():
            if splits is not None and split not in splits:
                continue
            worst = ranked(result, points)[:max(1, int(np.ceil(fraction * len(result))))]
            parts = part_breakdown(result, points)
            names = [dominant_part(parts, i)[0] for i in worst]
            row = {"approach": report.label(approach), "split": split, "worst n": len(worst),
                   "NME %": 100 * float(np.mean(result.errors(points)[worst]))}
            row.update({f"{p} %": 100 * names.count(p) / len(names) for p in parts})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["approach", "split"]).round(1)


@dataclass(frozen=True)
class Case:
    """What the inspector shows: the sample, its error and the part that dominates it."""
    approach: str
    split: str
    position: int       # in the ranking shown (0 = first)
    index: int          # in the Result
    id: str
    subset: str
    points: int         # 68 or 51
    error: float        # NME over ``points``
    part: str
    share: float


def _figure_png(fig):
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


class Inspector:
    """Browse the ranking of every approach and split, worst (or best) first.

    Widgets: ``approach_dropdown``, ``split_dropdown``, ``order_buttons`` (worst / best first),
    ``points_buttons`` (68 / 51), ``slider`` (position in the ranking, 0 = first), ``html`` (the
    per-part breakdown) and ``output`` (the figure). ``widget`` lays them out. Changing a widget
    calls :meth:`select` / :meth:`show`, which can also be called directly; the last figure drawn
    is ``figure`` (a matplotlib Figure not managed by pyplot) and :meth:`current` describes it.
    """

    def __init__(self, results, data_dir, approach=None, split=None):
        import ipywidgets as w
        if not results:
            raise ValueError("no results to inspect (see load_results)")
        self.results, self.data_dir = results, Path(data_dir)
        self.result, self.ranking, self.position, self.figure = None, np.zeros(0, int), 0, None
        self._busy = False
        approach = approach if approach in results else next(iter(results))
        self.approach_dropdown = w.Dropdown(options=[(report.label(a), a) for a in results],
                                            value=approach, description="approach")
        self.split_dropdown = w.Dropdown(options=list(results[approach]), description="split")
        self.order_buttons = w.ToggleButtons(options=ORDERS, value=ORDERS[0], description="order")
        self.points_buttons = w.ToggleButtons(options=[("68 points", 68), ("51 points", 51)],
                                              value=68, description="error")
        self.slider = w.IntSlider(value=0, min=0, max=0, description="position",
                                  continuous_update=False)
        self.html = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([w.HBox([self.approach_dropdown, self.split_dropdown]),
                              self.order_buttons, self.points_buttons, self.slider, self.html,
                              self.output])
        self.approach_dropdown.observe(self._on_approach, names="value")
        self.split_dropdown.observe(self._on_split, names="value")
        self.order_buttons.observe(self._on_ranking, names="value")
        self.points_buttons.observe(self._on_ranking, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.select(approach, split)

    # -- state -------------------------------------------------------------------------------
    @property
    def points(self):
        return self.points_buttons.value

    @property
    def worst_first(self):
        return self.order_buttons.value == ORDERS[0]

    def select(self, approach, split=None):
        """Show ``approach`` on ``split`` (kept when that approach has it, else its first),
        from position 0 of the ranking."""
        if approach not in self.results:
            raise KeyError(f"no results for approach {approach!r}; have {', '.join(self.results)}")
        splits = list(self.results[approach])
        split = split if split in splits else (self.split_dropdown.value
                                                if self.split_dropdown.value in splits else splits[0])
        self._busy = True
        try:
            self.approach_dropdown.value = approach
            if list(self.split_dropdown.options) != splits:
                self.split_dropdown.options = splits
            self.split_dropdown.value = split
            self.result = self.results[approach][split]
            self._rank()
            self.slider.value = 0
        finally:
            self._busy = False
        return self.show(0)

    def _rank(self):
        self.ranking = ranked(self.result, self.points, self.worst_first)
        self.slider.max = len(self.ranking) - 1

    def show(self, position):
        """Draw the image at ``position`` of the current ranking (clipped to the range)."""
        position = int(np.clip(position, 0, len(self.ranking) - 1))
        if self.slider.value != position:
            self._busy = True
            try:
                self.slider.value = position
            finally:
                self._busy = False
        self.position = position
        index = int(self.ranking[position])
        from matplotlib.figure import Figure
        fig = Figure(figsize=(8.5, 4))
        ax_image, ax_bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        drawn = draw_case(ax_image, ax_bars, self.result, index, self.data_dir, self.points)
        fig.tight_layout()
        self.figure, self.offset = fig, drawn["offset"]
        self.html.value = self._breakdown_html(index)
        self._display(fig)
        return self.current()

    def current(self):
        """The :class:`Case` shown now."""
        index = int(self.ranking[self.position])
        part, share = dominant_part(part_breakdown(self.result, self.points), index)
        return Case(self.result.approach, self.result.split, self.position, index,
                    str(self.result.ids[index]), str(self.result.subsets[index]), self.points,
                    float(self.result.errors(self.points)[index]), part, share)

    # -- rendering -----------------------------------------------------------------------------
    def _breakdown_html(self, index):
        r, parts = self.result, part_breakdown(self.result, self.points)
        part, share = dominant_part(parts, index)
        cells = " · ".join((f"<b>{p} {100 * v[index]:.2f}</b>" if p == part
                            else f"{p} {100 * v[index]:.2f}") for p, v in parts.items())
        return (f"<b>{html.escape(str(r.ids[index]))}</b> ({html.escape(str(r.subsets[index]))}), "
                f"position {self.position + 1}/{len(r)} {self.order_buttons.value}: "
                f"NME68 {100 * r.errors68[index]:.2f} %, NME51 {100 * r.errors51[index]:.2f} %"
                f"<br>per part (% of outer-eye distance): {cells}<br>dominant part: "
                f"<b>{part}</b> ({100 * share:.0f} % of the sum of part errors)")

    def _display(self, fig):
        """Put ``fig`` in the output widget as a PNG. The outputs are set as widget state, not
        captured with ``with self.output: display(...)``: capturing makes a headless run
        (papermill / nbclient) exchange messages with the kernel and can stall it."""
        png = base64.b64encode(_figure_png(fig)).decode("ascii")
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": png, "text/plain": repr(fig)}},)

    # -- callbacks -------------------------------------------------------------------------------
    def _on_approach(self, change):
        if not self._busy:
            self.select(change["new"], self.split_dropdown.value)

    def _on_split(self, change):
        if not self._busy and change["new"] is not None:
            self.select(self.approach_dropdown.value, change["new"])

    def _on_ranking(self, change):
        if not self._busy:
            self._busy = True
            try:
                self._rank()
            finally:
                self._busy = False
            self.show(self.slider.value)

    def _on_slider(self, change):
        if not self._busy:
            self.show(change["new"])


def inspect(profile, data_dir, approach=None, split=None):
    """Load every predictions file of ``profile``, display an :class:`Inspector` over them (in
    JupyterLab) and return it. ``split`` defaults to the test split when present."""
    from IPython.display import display
    data_dir = data.data_dir_for(data_dir, profile)
    results = load_results(profile, data_dir)
    if split is None:
        first = results.get(approach) or next(iter(results.values()))
        split = "test" if "test" in first else None
    inspector = Inspector(results, data_dir, approach, split)
    display(inspector.widget)
    return inspector
