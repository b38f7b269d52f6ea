"""The approaches' scheme (paper Fig. 3): every box and arrow drawn where the data says, one
colour per approach, and each approach's route ends at its 68 points."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fkd_utils import schemes  # noqa: E402


@pytest.fixture()
def drawn():
    out = schemes.approaches_scheme()
    yield out
    plt.close(out["figure"])


def _inside(point, name, pad=1e-6):
    x, y = schemes.centre(name)
    return (abs(point[0] - x) <= schemes.BOX_W / 2 + pad
            and abs(point[1] - y) <= schemes.BOX_H / 2 + pad)


def test_every_node_is_a_box_with_its_text(drawn):
    assert set(drawn["boxes"]) == set(schemes.NODES)
    for name, box in drawn["boxes"].items():
        x, y = schemes.centre(name)
        assert box.get_x() + box.get_width() / 2 == pytest.approx(x)
        assert box.get_y() + box.get_height() / 2 == pytest.approx(y)
        assert drawn["texts"][name].get_text() == schemes.NODES[name][2]
        assert drawn["texts"][name].get_position() == pytest.approx((x, y))
    centres = np.array([schemes.centre(n) for n in schemes.NODES])
    gaps = np.abs(centres[:, None] - centres[None])            # no two boxes overlap
    overlap = (gaps[..., 0] < schemes.BOX_W) & (gaps[..., 1] < schemes.BOX_H)
    assert overlap.sum() == len(centres)                        # only each box with itself


def test_arrows_join_their_boxes_in_their_approach_colour(drawn):
    assert len(drawn["arrows"]) == len(schemes.EDGES)
    for (a, b, approach, arrow), edge in zip(drawn["arrows"], schemes.EDGES):
        assert (a, b, approach) == edge
        start, end = arrow._posA_posB
        assert _inside(start, a) and _inside(end, b)
        assert not _inside(start, b) and not _inside(end, a)
        assert mcolors.same_color(arrow.get_edgecolor(), schemes.APPROACH_COLOURS[approach])
    legend = drawn["figure"].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "1. end-to-end", "2. region-specific", "3. region + box ResNet",
        "oracle (GT regions, upper bound)"]


def test_each_approach_routes_to_its_own_points():
    assert schemes.path("end_to_end") == ["image", "end_to_end_net", "e2e_points"]
    assert schemes.path("region") == ["end_to_end_net", "squares_from_points", "region_nets",
                                      "region_points"]
    assert schemes.path("box") == ["image", "box_net", "predicted_boxes", "region_nets",
                                   "box_points"]
    assert schemes.path("oracle")[0] == "truth" and schemes.path("oracle")[-1] == "oracle_points"
    # the three region-based routes share the region ResNets, the paper's point
    assert all("region_nets" in schemes.path(a) for a in ("region", "box", "oracle"))


def test_colours_can_be_overridden():
    out = schemes.approaches_scheme(colours={"oracle": "k"})
    colours = {approach: arrow.get_edgecolor() for _, _, approach, arrow in out["arrows"]}
    assert mcolors.same_color(colours["oracle"], "k")
    assert mcolors.same_color(colours["box"], schemes.APPROACH_COLOURS["box"])
    plt.close(out["figure"])
