"""The paper's Fig. 3, drawn with matplotlib: how the three approaches (and the oracle) turn a
face image into 68 points (introduced in notebook 02).

The scheme is data first: :data:`NODES` (boxes: name -> (column, row, text, kind)) and
:data:`EDGES` (arrows: (from, to, approach)); :func:`approaches_scheme` draws them, one colour
per approach, and returns the drawn artists so that tests can check them. :func:`path` follows
one approach's arrows from the face image to its 68 points.
"""
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .plots import APPROACH_COLOURS
#: Box face colours by kind.
KIND_COLOURS = {"data": "#eeeeee", "model": "#cfe2f3", "boxes": "#fde9c9", "output": "#d9ead3"}

#: name -> (column, row, text, kind); columns and rows in box units (row 0 at the top).
NODES = {
    "image": (0, 1.5, "face crop\n(detector box)", "data"),
    "truth": (1, 3, "ground-truth\n68 points", "data"),
    "end_to_end_net": (1, 0, "end-to-end\nResNet", "model"),
    "box_net": (1, 2, "box ResNet\n(16 outputs)", "model"),
    "e2e_points": (4, 0, "68 points\n(approach 1)", "output"),
    "squares_from_points": (2, 1, "region squares\naround its points", "boxes"),
    "predicted_boxes": (2, 2, "4 region boxes\n(eyes, nose, mouth)", "boxes"),
    "squares_from_truth": (2, 3, "region squares\naround the truth", "boxes"),
    "region_nets": (3, 2, "4 region ResNets\n(one stage fewer)", "model"),
    "region_points": (4, 1, "68 points (approach 2)\njaw from approach 1", "output"),
    "box_points": (4, 2, "68 points (approach 3)\njaw from approach 1", "output"),
    "oracle_points": (4, 3, "68 points (oracle)\nupper bound of 2-3", "output"),
}
#: (from, to, approach) arrows. Approaches 2, 3 and the oracle share the region ResNets.
EDGES = (
    ("image", "end_to_end_net", "end_to_end"),
    ("end_to_end_net", "e2e_points", "end_to_end"),
    ("end_to_end_net", "squares_from_points", "region"),
    ("squares_from_points", "region_nets", "region"),
    ("region_nets", "region_points", "region"),
    ("image", "box_net", "box"),
    ("box_net", "predicted_boxes", "box"),
    ("predicted_boxes", "region_nets", "box"),
    ("region_nets", "box_points", "box"),
    ("truth", "squares_from_truth", "oracle"),
    ("squares_from_truth", "region_nets", "oracle"),
    ("region_nets", "oracle_points", "oracle"),
)
#: Where each approach's own arrows start and end.
ENDS = {"end_to_end": ("image", "e2e_points"), "region": ("end_to_end_net", "region_points"),
        "box": ("image", "box_points"), "oracle": ("truth", "oracle_points")}
#: Box size and spacing, in data units.
BOX_W, BOX_H, STEP_X, STEP_Y = 2.15, 0.8, 2.65, 1.15


def centre(name):
    """(x, y) centre of a node in the scheme's data coordinates (y grows upwards)."""
    column, row = NODES[name][:2]
    return column * STEP_X, -row * STEP_Y


def path(approach):
    """The nodes one approach's arrows pass through, from its start to its 68 points (approach
    2 starts from approach 1's network; the region ResNets also see the face image, which the
    scheme leaves out as the paper's does)."""
    start, end = ENDS[approach]
    route, here = [start], start
    while here != end:
        nxt = [b for a, b, who in EDGES if a == here and who == approach]
        if len(nxt) != 1:
            raise ValueError(f"approach {approach!r}: {len(nxt)} arrows leave {here!r}")
        here = nxt[0]
        route.append(here)
    return route


def _edge_points(a, b):
    """Arrow ends on the borders of boxes a and b (left/right sides, or top/bottom when the
    boxes share a column)."""
    (xa, ya), (xb, yb) = centre(a), centre(b)
    if abs(xa - xb) < 1e-9:
        sign = 1 if yb > ya else -1
        return (xa, ya + sign * BOX_H / 2), (xb, yb - sign * BOX_H / 2)
    sign = 1 if xb > xa else -1
    return (xa + sign * BOX_W / 2, ya), (xb - sign * BOX_W / 2, yb)


def approaches_scheme(ax=None, colours=None):
    """Draw the scheme on ``ax`` (a new figure when None). Returns ``{"figure", "boxes": {name:
    FancyBboxPatch}, "texts": {name: Text}, "arrows": [(from, to, approach, FancyArrowPatch)]}``.
    ``colours`` maps approach -> colour (default :data:`APPROACH_COLOURS`)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    colours = {**APPROACH_COLOURS, **(colours or {})}
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.6))
    boxes, texts, arrows = {}, {}, []
    for name, (_, _, text, kind) in NODES.items():
        x, y = centre(name)
        boxes[name] = ax.add_patch(FancyBboxPatch(
            (x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
            boxstyle="round,pad=0.02,rounding_size=0.12", fc=KIND_COLOURS[kind], ec="0.4", lw=0.8))
        texts[name] = ax.text(x, y, text, ha="center", va="center", fontsize=8)
    for a, b, approach in EDGES:
        start, end = _edge_points(a, b)
        arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.6,
                                color=colours[approach], shrinkA=0, shrinkB=0,
                                connectionstyle="arc3,rad=0.0")
        arrows.append((a, b, approach, ax.add_patch(arrow)))
    xs, ys = zip(*(centre(n) for n in NODES))
    ax.set_xlim(min(xs) - BOX_W / 2 - 0.1, max(xs) + BOX_W / 2 + 0.1)
    ax.set_ylim(min(ys) - BOX_H / 2 - 0.1, max(ys) + BOX_H / 2 + 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    from .report import label
    handles = [Line2D([], [], color=colours[a], lw=2, label=label(a)) for a in ENDS]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              fontsize=8, frameon=False)
    ax.set_title("The three approaches and the oracle (paper Fig. 3): arrows follow each "
                 "approach's route to its 68 points", fontsize=9)
    return {"figure": ax.figure, "boxes": boxes, "texts": texts, "arrows": arrows}
