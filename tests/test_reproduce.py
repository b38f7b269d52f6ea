"""``fkd reproduce``: notebook order and selection, skip logic, failures, and (slow) the whole
quick reproduction of every notebook through papermill on the embedded data."""
import json

import nbformat
import pytest

from fkd_utils import paths, reproduce


def test_notebooks_in_order_and_only_selection():
    names = [p.name for p in reproduce.notebooks()]
    assert names == sorted(names) and names[0].startswith("01_")
    assert [p.name[:2] for p in reproduce.notebooks(["3", "04"])] == ["03", "04"]
    with pytest.raises(ValueError, match="no notebook numbered 99"):
        reproduce.notebooks(["99"])


def _tiny_notebook(path, code):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_a_failing_notebook_names_itself_and_its_error(tmp_path):
    nb = _tiny_notebook(tmp_path / "09_broken.ipynb", "raise ValueError('bad input file xyz')")
    with pytest.raises(reproduce.NotebookFailed, match=r"09_broken.ipynb failed.*ValueError.*xyz"):
        reproduce.run_notebook(nb, tmp_path / "out", {"x": 2}, "hash", log=lambda *_: None)


def test_up_to_date_notebooks_are_skipped_unless_forced(tmp_path):
    nb = _tiny_notebook(tmp_path / "09_ok.ipynb", "y = x + 1")
    (tmp_path / "out").mkdir()
    first = reproduce.run_notebook(nb, tmp_path / "out", {"x": 2}, "h", log=lambda *_: None)
    again = reproduce.run_notebook(nb, tmp_path / "out", {"x": 2}, "h", log=lambda *_: None)
    changed = reproduce.run_notebook(nb, tmp_path / "out", {"x": 3}, "h", log=lambda *_: None)
    forced = reproduce.run_notebook(nb, tmp_path / "out", {"x": 3}, "h", force=True, log=lambda *_: None)
    assert not first["skipped"] and again["skipped"] and not changed["skipped"] and not forced["skipped"]
    executed = nbformat.read(tmp_path / "out" / "09_ok.ipynb", 4)
    assert "x = 3" in "".join(c.source for c in executed.cells)  # parameters were injected
    assert nb.read_text().count("x = 3") == 0  # the source notebook is never written over


def test_output_problems_finds_log_lines_retracing_and_path_echoes():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import keras", outputs=[nbformat.v4.new_output(
            "stream", name="stderr", text="I0000 port.cc:153] oneDNN custom operations are on.")]),
        nbformat.v4.new_code_cell("fit()", outputs=[nbformat.v4.new_output(
            "stream", name="stderr", text="WARNING: 5 out of the last 9 calls to <function f> "
                                          "triggered tf.function retracing. Tracing is expensive")]),
        nbformat.v4.new_code_cell("save_fig('x')", outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/plain": "PosixPath('/x/figures/02_ced.png')"},
            execution_count=3)]),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output(
            "stream", name="stdout", text="end_to_end: 216 training images\nEpoch 1/12\n")])])
    assert [(i, problem) for i, problem, _ in reproduce.output_problems(nb)] == [
        (0, "TensorFlow log line"), (1, "retracing warning"), (2, "path echo")]


@pytest.mark.parametrize("name", [p.name for p in reproduce.notebooks()])
def test_executed_quick_notebooks_are_clean(name):
    """The executed copies of the last quick run (the tests' own, else the clone's runs/quick/)
    show no noise."""
    found = [d / name for d in (paths.runs_dir("quick"), paths.PROJECT_ROOT / "runs" / "quick")
             if (d / name).is_file()]
    if not found:
        pytest.skip(f"{name}: no executed copy (run 'fkd reproduce --profile quick')")
    executed = found[0]
    assert reproduce.output_problems(executed) == []


@pytest.mark.slow
def test_quick_reproduction_of_every_notebook():
    lines = []
    manifest = reproduce.reproduce("quick", force=True, log=lines.append)
    assert [r["notebook"] for r in manifest["notebooks"]] == [p.name for p in reproduce.notebooks()]
    results = json.loads((paths.results_dir("quick") / "results.json").read_text())
    for approach in ("mean_shape", "end_to_end", "region", "box", "oracle"):
        for split in ("validation", "test"):
            table = results[approach][split]
            assert set(table) == {"68", "51"} and table["68"]["all"]["n"] > 0
    assert set(results["end_to_end"]["test"]["68"]) == {"all", "indoor", "outdoor"}
    # a first run that teaches: end to end and our cascade learn, well past the mean shape
    nme = {a: results[a]["validation"]["68"]["all"]["nme"] for a in ("mean_shape", "end_to_end",
                                                                     "cascade")}
    assert nme["cascade"] < nme["end_to_end"] < 0.8 * nme["mean_shape"], nme
    for nb in reproduce.notebooks():
        assert reproduce.output_problems(paths.runs_dir("quick") / nb.name) == [], nb.name
    for fig in ("01_preprocessed_examples", "02_ced", "04_fig6_ced_approaches",
                "05_fig7_challenge_ced", "06_fig5_ablations"):
        assert (paths.figures_dir() / f"{fig}.png").is_file(), fig
    assert all(f"[{i}/" in " ".join(lines) for i in range(1, len(manifest["notebooks"]) + 1))
    for key in ("packages", "keras_backend", "data_fingerprint", "seed"):
        assert manifest[key]
    # a second run finds everything up to date
    again = reproduce.reproduce("quick", log=lambda *_: None)
    assert all(r["skipped"] for r in again["notebooks"])


@pytest.mark.slow
def test_notebook_02_trains_and_predicts_on_jax(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # the papermill kernel inherits it
    nb = reproduce.notebooks(["02"])[0]
    record = reproduce.run_notebook(nb, tmp_path, {"profile": "quick", "retrain": True}, "jax",
                                    force=True, log=lambda *_: None)
    executed = nbformat.read(tmp_path / nb.name, 4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "Keras backend: jax" in text and "val_loss" in text and not record["skipped"]
