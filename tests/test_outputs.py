"""fkd predict's result writer: unique names, nothing written over, settings recorded, and
overlays that line up pixel for pixel with the photo."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fkd_utils import cli, outputs


def _photo(path, seed=0, size=(40, 56)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path)
    return path


names = st.text(st.sampled_from("abAB_.-"), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(paths=st.lists(st.lists(names, min_size=1, max_size=3), min_size=1, max_size=8))
def test_output_stems_never_collide(paths):
    files = [Path(*parts) for parts in paths]
    stems = outputs.output_stems(files, [f.name for f in files])
    assert len({s.casefold() for s in stems}) == len(stems)
    unique = [f for f in files if sum(g.name.casefold() == f.name.casefold() for g in files) == 1]
    for f, stem in zip(files, stems):   # a name only one input has is kept as it is
        if f in unique:
            assert stem == f.name


def test_same_file_name_from_two_folders_gives_two_results(tmp_path, untrained_weights, capsys):
    a, b = _photo(tmp_path / "a" / "x.png", 0), _photo(tmp_path / "b" / "x.png", 1)
    out = tmp_path / "out"
    code = cli.main(["predict", str(a), str(b), "--out", str(out), "--weights",
                     str(untrained_weights), "--no-overlay"])
    assert code == 0
    results = sorted(out.glob("*.fkd.json"))
    assert len(results) == 2
    files = {json.loads(p.read_text())["file"] for p in results}
    assert files == {str(a), str(b)}


def test_result_json_records_the_settings(tmp_path, untrained_weights, capsys):
    from fkd_utils.landmarker import sha256
    image = _photo(tmp_path / "face.png")
    out = tmp_path / "out"
    assert cli.main(["predict", str(image), "--out", str(out), "--weights",
                     str(untrained_weights), "--min-face", "0.12", "--stages", "1"]) == 0
    record = json.loads((out / "face.png.fkd.json").read_text())
    got = record["settings"]
    assert got["approach"] == "cascade" and got["stages"] == 1 and got["min_face"] == 0.12
    assert got["detector"] in ("hog", "haar", "lbp")
    assert got["weights_manifest_sha256"] == sha256(untrained_weights / "manifest.json")
    assert got["weights_dir"] == str(untrained_weights.resolve())
    assert "fkd_version" in got and got["runtime"].startswith("keras")
    assert (out / "face.png.fkd.png").is_file()
    assert not list(out.glob(".*"))          # no lock or temporary file left behind


def test_exclusive_write_refuses_a_file_that_appeared(tmp_path):
    target = tmp_path / "x.fkd.json"
    outputs._write_new(target, b"first")
    with pytest.raises(FileExistsError, match="appeared while this run was writing"):
        outputs._write_new(target, b"second")       # what a concurrent run would meet
    assert target.read_bytes() == b"first"
    outputs._write_new(target, b"second", overwrite=True)
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.fkd.json"]


def test_lock_stops_a_second_writer_and_a_dead_ones_lock_is_taken_over(tmp_path):
    with outputs.ResultWriter(tmp_path, ["a"]):
        with pytest.raises(FileExistsError, match="another fkd predict"):
            outputs.ResultWriter(tmp_path, ["b"]).__enter__()
    assert not (tmp_path / outputs.LOCK_NAME).exists()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / outputs.LOCK_NAME).write_text(str(dead))
    with outputs.ResultWriter(tmp_path, ["b"]) as writer:
        writer.write("b", {"faces": []}, b"png")
    assert json.loads((tmp_path / "b.fkd.json").read_text())["faces"] == []


# -------------------------------------------------------------------------- overlays

def test_overlay_keeps_the_photo_size_and_its_pixels_when_a_box_passes_the_edge():
    image = np.full((30, 50, 3), 90, np.uint8)
    points = np.array([[10.0, 12.0], [47.0, 3.0]])
    face = {"box": [-20.0, -5.0, 70.0, 25.0], "points": points}   # past three edges
    canvas, scale = outputs.draw_overlay(image, [face])
    assert scale == 1.0 and canvas.shape == image.shape
    for x, y in points.astype(int):                       # each point's own pixel is red
        assert tuple(canvas[y, x]) == outputs.POINT_COLOUR
    assert tuple(canvas[24, 25]) == outputs.BOX_COLOUR    # the box's bottom edge, row y1 - 1
    assert tuple(canvas[20, 30]) == (90, 90, 90)          # elsewhere the photo is untouched


def test_overlay_of_a_huge_photo_is_capped():
    image = np.zeros((6000, 900, 3), np.uint8)
    face = {"box": [101.0, 201.0, 401.0, 501.0], "points": np.array([[300.0, 3000.0]])}
    canvas, scale = outputs.draw_overlay(image, [face], max_side=1500)
    assert scale == 0.25 and canvas.shape == (1500, 225, 3)
    assert tuple(canvas[750, 75]) == outputs.POINT_COLOUR  # (300.5 * 0.25 - 0.5, ...)
