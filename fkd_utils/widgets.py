"""Worst predictions: per-image errors, best/worst galleries and an interactive inspector
(introduced in notebook 07).

* :func:`load_results` reads every ``results/<profile>/<approach>_<split>.npz`` present and
  pairs it with the ground truth (aligned by ids) and its errors: :class:`Result`.
* :func:`ranked` orders the images by error, :func:`dominant_part` says which part (jaw,
  brows, nose, eyes, mouth) carries most of an image's error.
* :func:`draw_case` draws one image (cropped around the face) with the ground truth (green
  points) and the prediction (red crosses), and its per-part errors; :func:`gallery` draws the
  best and worst images of one approach, like the paper's Fig. 8.
* :func:`filtered` narrows a ranking to one subset and/or one dominant part;
  :func:`used_boxes` gives the face box and region boxes an approach used (saved with its
  predictions); :func:`draw_ced_marker` places one face on its approach's CED.
* :class:`Inspector` is an ipywidgets browser over the ranking: two approaches side by side
  on the same face, filters, previous/next, layer toggles and the CED panel. Its logic lives
  in plain methods (:meth:`Inspector.select`, :meth:`Inspector.show`, :meth:`Inspector.step`,
  :meth:`Inspector.current`), so it runs, and is tested, without a browser
  (tests/test_browser.py also drives it in JupyterLab); :func:`inspect` builds and displays one.

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
from .plots import (APPROACH_COLOURS, crop_box, draw_error_lines, number_points, plot_ced,
                    show_keypoints)

#: Display order of the approaches (others follow, sorted).
APPROACH_ORDER = ("mean_shape",) + tuple(pipeline.APPROACHES) + tuple(pipeline.OUR_APPROACHES)
#: Orders of the inspector's ranking.
ORDERS = ("worst first", "best first")
#: Margin around the union box of ground truth and prediction, as a fraction of its longer side.
CROP_MARGIN = 0.25
#: Colours of the per-part bars: the dominant part, the others.
DOMINANT_COLOUR, PART_COLOUR = "tab:red", "tab:gray"
#: What :func:`draw_face` can draw over a face; the inspector's toggles.
LAYERS = ("true points", "predictions", "error lines", "point numbers", "boxes")
DEFAULT_LAYERS = ("true points", "predictions")
#: Rectangle styles of the face box and the region boxes an approach used.
BOX_STYLES = {"face": dict(ec="white", ls="--", lw=1.0), "regions": dict(ec="orange", lw=1.0)}
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
    #: The boxes the approach used (1-based, see :attr:`fkd_utils.pipeline.Prediction.boxes`):
    #: ``face_boxes`` (N, 4) and ``region_boxes`` (N, 4, 4), or None when not saved.
    face_boxes: np.ndarray = field(default=None, repr=False)
    region_boxes: np.ndarray = field(default=None, repr=False)

    @classmethod
    def from_arrays(cls, approach, split, ids, points, gt, subsets, face_boxes=None,
                    region_boxes=None):
        points, gt = np.asarray(points, np.float64), np.asarray(gt, np.float64)
        return cls(approach, split, np.asarray(ids).astype(str), points, gt, np.asarray(subsets),
                   metrics.nme(points, gt, 68), metrics.nme(points, gt, 51),
                   metrics.part_errors(points, gt), face_boxes, region_boxes)

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
        path = folder / f"{approach}_{split}.npz"
        _, points = pipeline.load_predictions(path, ids=list(ids))
        boxes = pipeline.load_boxes(path, list(ids))
        results.setdefault(approach, {})[split] = Result.from_arrays(
            approach, split, ids, points, gt, subsets, boxes.get("face_boxes"),
            boxes.get("region_boxes"))
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


def _title(result, index, points):
    return (f"{result.ids[index]}\nNME{points} {100 * result.errors(points)[index]:.2f} % · "
            f"{result.subsets[index]}")


def used_boxes(result, index):
    """The face box and region boxes (0-based pixel ``[x0, y0, x1, y1]`` rows, (k, 4)) that
    ``result``'s approach used on image ``index``: ``{"face": ..., "regions": ...}``, each
    (0, 4) when not saved."""
    def rows(boxes):
        if boxes is None:
            return np.zeros((0, 4))
        return np.asarray(boxes[index], np.float64).reshape(-1, 4) - 1.0
    return {"face": rows(result.face_boxes), "regions": rows(result.region_boxes)}


def _draw_boxes(ax, boxes, offset):
    """Rectangles for :func:`used_boxes` (minus the crop offset); returns the patches."""
    import matplotlib.patches as mpatches
    patches = []
    for kind, rows in boxes.items():
        for x0, y0, x1, y1 in rows - np.tile(offset, 2):
            patches.append(ax.add_patch(mpatches.Rectangle(
                (x0, y0), x1 - x0, y1 - y0, fill=False, gid=f"{kind} box", **BOX_STYLES[kind])))
    return patches


def draw_face(ax, result, index, data_dir, title=None, margin=CROP_MARGIN, layers=DEFAULT_LAYERS):
    """One image cropped around its face with the chosen ``layers`` (see :data:`LAYERS`):
    ground truth green, prediction red, error lines, point numbers, the boxes the approach used.
    Returns the crop offset (x0, y0): drawn points are the ``.pts`` points minus 1 minus it."""
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers {sorted(unknown)}; choose from {LAYERS}")
    image = read_image(Path(data_dir) / result.ids[index])
    gt, pred = pts_to_pixels(result.gt[index]), pts_to_pixels(result.points[index])
    boxes = used_boxes(result, index) if "boxes" in layers else {}
    corners = [b.reshape(-1, 2) for b in boxes.values()]
    x0, y0, x1, y1 = crop_box(np.concatenate([gt, pred] + corners), image.shape, margin)
    offset = np.array([x0, y0], np.float64)
    show_keypoints(ax, image[y0:y1, x0:x1], gt - offset if "true points" in layers else None,
                   pred - offset if "predictions" in layers else None, title)
    if "error lines" in layers:
        draw_error_lines(ax, pred - offset, gt - offset)
    if "point numbers" in layers:
        number_points(ax, pred - offset if "predictions" in layers else gt - offset)
    _draw_boxes(ax, boxes, offset)
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


def case_of(result, index, points=68, position=0):
    """The :class:`Case` of image ``index`` of a :class:`Result`."""
    part, share = dominant_part(part_breakdown(result, points), index)
    return Case(result.approach, result.split, position, index, str(result.ids[index]),
                str(result.subsets[index]), points, float(result.errors(points)[index]), part,
                share)


def filtered(result, points=68, worst_first=True, subset=None, part=None):
    """:func:`ranked` restricted to one subset and/or to the images whose dominant part (over
    ``points``) is ``part`` (None: no restriction)."""
    order = ranked(result, points, worst_first)
    if subset is not None:
        order = order[result.subsets[order] == subset]
    if part is not None:
        parts = part_breakdown(result, points)
        order = np.array([i for i in order if dominant_part(parts, i)[0] == part], int)
    return order


def ced_xmax(errors, alpha=metrics.DEFAULT_ALPHA):
    """The CED panel's range: alpha, or up to the given errors (rounded up to 0.02) when one
    is beyond it, so that the face's marker stays on the plot."""
    errors = np.asarray([e for e in np.ravel(errors) if np.isfinite(e)], float)
    top = errors.max() if errors.size else 0.0
    return alpha if top <= alpha else float(np.ceil(top * 1.05 / 0.02) * 0.02)


def draw_ced_marker(ax, result, index, points=68, xmax=metrics.DEFAULT_ALPHA, colour=None):
    """The CED of ``result`` over ``points`` with image ``index`` marked on it: the marker
    sits at (its error, fraction of images with an error <= it). Returns (line, marker)."""
    errors = result.errors(points)
    style = {} if colour is None else {"color": colour}
    (line,) = plot_ced(ax, {report.label(result.approach): errors}, xmax=xmax,
                       styles={report.label(result.approach): style})
    error = float(errors[index])
    (marker,) = ax.plot([error], [metrics.ced(errors, [error])[0]], "o", ms=7, mfc="none",
                        mew=2, color=line.get_color(), label=f"this face {100 * error:.2f} %")
    ax.legend(fontsize=7, loc="upper left")      # CEDs rise to the right: that corner is free
    return line, marker


def _part_table_html(cases, results, points):
    """An HTML table: one row per part (then NME), one column per approach shown."""
    parts = list(part_breakdown(results[0], points))
    head = "".join(f"<th>{html.escape(report.label(c.approach))}</th>" for c in cases)
    rows = []
    for p in parts:
        cells = "".join((f"<td><b>{100 * r.parts[p][c.index]:.2f}</b></td>" if c.part == p
                         else f"<td>{100 * r.parts[p][c.index]:.2f}</td>")
                        for c, r in zip(cases, results))
        rows.append(f"<tr><td>{p}</td>{cells}</tr>")
    nme = "".join(f"<td><b>{100 * c.error:.2f}</b></td>" for c in cases)
    rows.append(f"<tr><td>NME{points}</td>{nme}</tr>")
    return (f'<table class="fkd-parts"><tr><th>part (% of outer-eye distance)</th>{head}</tr>'
            f"{''.join(rows)}</table>")


class Inspector:
    """Browse the ranking of every approach and split, worst (or best) first.

    Widgets: ``approach_dropdown``, ``compare_dropdown`` (a second approach drawn on the same
    face, or none), ``split_dropdown``, ``subset_dropdown`` and ``part_dropdown`` (keep one
    subset / the images whose dominant part is one part), ``order_buttons`` (worst / best
    first), ``points_buttons`` (68 / 51), ``slider`` (position in the ranking, 0 = first),
    ``previous_button`` / ``next_button``, ``layer_boxes`` (a checkbox per :data:`LAYERS`),
    ``html`` (the case and its per-part table) and ``output`` (the figure). ``widget`` lays them
    out. Changing a widget calls :meth:`select` / :meth:`show`, which can also be called
    directly; the last figure drawn is ``figure`` (a matplotlib Figure not managed by pyplot),
    its panels ``axes`` (``face``, ``compare`` when comparing, ``bars``, ``ced``), and
    :meth:`current` / :meth:`compared` describe the faces shown.
    """

    ALL = "all"

    def __init__(self, results, data_dir, approach=None, split=None, compare=None):
        import ipywidgets as w
        if not results:
            raise ValueError("no results to inspect (see load_results)")
        self.results, self.data_dir = results, Path(data_dir)
        self.result, self.ranking, self.position, self.figure = None, np.zeros(0, int), 0, None
        self.axes, self.offset = {}, None
        self._busy = False
        approach = approach if approach in results else next(iter(results))
        self.approach_dropdown = w.Dropdown(options=[(report.label(a), a) for a in results],
                                            value=approach, description="approach")
        self.compare_dropdown = w.Dropdown(options=[("none", None)], value=None,
                                           description="compare")
        self.split_dropdown = w.Dropdown(options=list(results[approach]), description="split")
        self.subset_dropdown = w.Dropdown(options=[self.ALL], value=self.ALL, description="subset")
        self.part_dropdown = w.Dropdown(options=[self.ALL], value=self.ALL,
                                        description="dominant")
        self.order_buttons = w.ToggleButtons(options=ORDERS, value=ORDERS[0], description="order")
        self.points_buttons = w.ToggleButtons(options=[("68 points", 68), ("51 points", 51)],
                                              value=68, description="error")
        self.slider = w.IntSlider(value=0, min=0, max=0, description="position",
                                  continuous_update=False)
        self.previous_button = w.Button(description="previous", icon="arrow-left")
        self.next_button = w.Button(description="next", icon="arrow-right")
        self.layer_boxes = {name: w.Checkbox(value=name in DEFAULT_LAYERS, description=name,
                                             indent=False, layout=w.Layout(width="auto"))
                            for name in LAYERS}
        self.html = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([
            w.HBox([self.approach_dropdown, self.compare_dropdown, self.split_dropdown]),
            w.HBox([self.subset_dropdown, self.part_dropdown]),
            w.HBox([self.order_buttons, self.points_buttons]),
            w.HBox([self.previous_button, self.slider, self.next_button]),
            w.HBox(list(self.layer_boxes.values())), self.html, self.output])
        self.approach_dropdown.observe(self._on_approach, names="value")
        self.split_dropdown.observe(self._on_split, names="value")
        for control in (self.subset_dropdown, self.part_dropdown, self.order_buttons,
                        self.points_buttons):
            control.observe(self._on_ranking, names="value")
        for control in (self.compare_dropdown, *self.layer_boxes.values()):
            control.observe(self._on_redraw, names="value")
        self.slider.observe(self._on_slider, names="value")
        self.previous_button.on_click(lambda _: self.step(-1))
        self.next_button.on_click(lambda _: self.step(1))
        self.select(approach, split, compare)

    # -- state -------------------------------------------------------------------------------
    @property
    def points(self):
        return self.points_buttons.value

    @property
    def worst_first(self):
        return self.order_buttons.value == ORDERS[0]

    @property
    def layers(self):
        """The layers drawn on the faces (the checked :data:`LAYERS`)."""
        return tuple(name for name, box in self.layer_boxes.items() if box.value)

    @property
    def compare_result(self):
        """The second approach's :class:`Result` on the same split, or None."""
        other = self.compare_dropdown.value
        return None if other is None else self.results[other].get(self.result.split)

    def _choice(self, dropdown):
        return None if dropdown.value == self.ALL else dropdown.value

    @staticmethod
    def _set_options(dropdown, options, keep):
        """New options for a dropdown, keeping its value when still offered."""
        values = [o[1] if isinstance(o, tuple) else o for o in options]
        value = dropdown.value if dropdown.value in values else keep
        if list(dropdown.options) != list(options):
            dropdown.options = options
        dropdown.value = value

    def select(self, approach, split=None, compare=None):
        """Show ``approach`` on ``split`` (kept when that approach has it, else its first),
        from position 0 of the ranking. ``compare`` (an approach) is drawn beside it; by default
        the one compared so far stays when it has that split."""
        if approach not in self.results:
            raise KeyError(f"no results for approach {approach!r}; have {', '.join(self.results)}")
        if compare is not None and compare not in self.results:
            raise KeyError(f"no results for approach {compare!r}; have {', '.join(self.results)}")
        splits = list(self.results[approach])
        split = split if split in splits else (self.split_dropdown.value
                                                if self.split_dropdown.value in splits else splits[0])
        self._busy = True
        try:
            self.approach_dropdown.value = approach
            self._set_options(self.split_dropdown, splits, splits[0])
            self.split_dropdown.value = split
            self.result = self.results[approach][split]
            others = [(report.label(a), a) for a in self.results
                      if a != approach and split in self.results[a]]
            self._set_options(self.compare_dropdown, [("none", None)] + others, None)
            if compare is not None:      # an approach is not compared with itself
                self.compare_dropdown.value = (compare if compare != approach
                                               and split in self.results[compare] else None)
            self._set_options(self.subset_dropdown,
                              [self.ALL] + sorted(set(self.result.subsets.tolist())), self.ALL)
            self._set_options(self.part_dropdown,
                              [self.ALL] + list(part_breakdown(self.result, self.points)), self.ALL)
            self._rank()
            self.slider.value = 0
        finally:
            self._busy = False
        return self.show(0)

    def _rank(self):
        self.ranking = filtered(self.result, self.points, self.worst_first,
                                self._choice(self.subset_dropdown),
                                self._choice(self.part_dropdown))
        self.slider.max = max(len(self.ranking) - 1, 0)

    def step(self, delta):
        """Move ``delta`` places along the ranking (the previous / next buttons)."""
        return self.show(self.position + delta)

    def show(self, position):
        """Draw the image at ``position`` of the current ranking (clipped to the range)."""
        if not len(self.ranking):
            self.position, self.figure, self.axes = 0, None, {}
            self.html.value = ("<b>no image matches the filters</b> (subset "
                               f"{html.escape(self.subset_dropdown.value)}, dominant part "
                               f"{html.escape(self.part_dropdown.value)})")
            self.output.outputs = ()
            return None
        position = int(np.clip(position, 0, len(self.ranking) - 1))
        if self.slider.value != position:
            self._busy = True
            try:
                self.slider.value = position
            finally:
                self._busy = False
        self.position = position
        self.previous_button.disabled = position == 0
        self.next_button.disabled = position == len(self.ranking) - 1
        self.figure = self._draw(int(self.ranking[position]))
        cases = [c for c in (self.current(), self.compared()) if c is not None]
        self.html.value = self._header_html(cases) + _part_table_html(
            cases, [self.results[c.approach][c.split] for c in cases], self.points)
        self._display(self.figure)
        return self.current()

    def _draw(self, index):
        from matplotlib.figure import Figure
        other = self.compare_result
        panels = ["face"] + (["compare"] if other is not None else []) + ["bars", "ced"]
        widths = {"face": 3, "compare": 3, "bars": 2, "ced": 2.6}
        fig = Figure(figsize=(sum(widths[p] for p in panels) * 1.05, 3.6))
        axes = dict(zip(panels, fig.subplots(1, len(panels), gridspec_kw={
            "width_ratios": [widths[p] for p in panels]})))
        shown = [self.result] + ([other] if other is not None else [])
        for panel, result in zip(("face", "compare"), shown):
            title = f"{report.label(result.approach)}\n" + _title(result, index, self.points)
            offset = draw_face(axes[panel], result, index, self.data_dir, title,
                               layers=self.layers)
            self.offset = offset if panel == "face" else self.offset
        draw_bars(axes["bars"], self.result, index, self.points)
        xmax = ced_xmax([r.errors(self.points)[index] for r in shown])
        for result in shown:
            draw_ced_marker(axes["ced"], result, index, self.points, xmax,
                            APPROACH_COLOURS.get(result.approach))
        axes["ced"].set_title(f"where this face sits on the CED ({self.points} points)", fontsize=8)
        fig.tight_layout()
        self.axes = axes
        return fig

    def current(self):
        """The :class:`Case` shown now (None when no image matches the filters)."""
        if not len(self.ranking):
            return None
        return case_of(self.result, int(self.ranking[self.position]), self.points, self.position)

    def compared(self):
        """The :class:`Case` of the compared approach on the same face, or None."""
        other = self.compare_result
        if other is None or not len(self.ranking):
            return None
        return case_of(other, int(self.ranking[self.position]), self.points, self.position)

    # -- rendering -----------------------------------------------------------------------------
    def _header_html(self, cases):
        r, case = self.result, cases[0]
        index = case.index
        return (f"<b>{html.escape(case.id)}</b> ({html.escape(case.subset)}), position "
                f"{self.position + 1}/{len(self.ranking)} {self.order_buttons.value} "
                f"({len(r)} images on {html.escape(r.split)}): NME68 "
                f"{100 * r.errors68[index]:.2f} %, NME51 {100 * r.errors51[index]:.2f} %; "
                f"dominant part <b>{case.part}</b> ({100 * case.share:.0f} % of the sum of part "
                "errors)<br>")

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
            try:       # 51 points have no jaw: the part filter's options follow the points
                self._set_options(self.part_dropdown, [self.ALL] + list(
                    part_breakdown(self.result, self.points)), self.ALL)
                self._rank()
            finally:
                self._busy = False
            self.show(self.slider.value)

    def _on_redraw(self, change):
        if not self._busy:
            self.show(self.position)

    def _on_slider(self, change):
        if not self._busy:
            self.show(change["new"])


def inspect(profile, data_dir, approach=None, split=None, compare=None):
    """Load every predictions file of ``profile``, display an :class:`Inspector` over them (in
    JupyterLab) and return it. ``split`` defaults to the test split when present; ``compare``
    names a second approach to draw beside ``approach``."""
    from IPython.display import display
    data_dir = data.data_dir_for(data_dir, profile)
    results = load_results(profile, data_dir)
    if split is None:
        first = results.get(approach) or next(iter(results.values()))
        split = "test" if "test" in first else None
    inspector = Inspector(results, data_dir, approach, split, compare)
    display(inspector.widget)
    return inspector
