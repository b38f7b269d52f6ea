"""``fkd reproduce``: notebook order and selection, skip logic, failures, and (slow) the whole
quick reproduction of every notebook through papermill on the embedded data."""
import json

import nbformat
import pytest

from fkd_utils import paths, pipeline, reproduce


def test_notebooks_in_order_and_only_selection():
    names = [p.name for p in reproduce.notebooks()]
    assert names == sorted(names) and names[0].startswith("01_")
    assert [p.name[:2] for p in reproduce.notebooks(["3", "04"])] == ["03", "04"]
    with pytest.raises(ValueError, match="no notebook numbered 99"):
        reproduce.notebooks(["99"])


def test_committed_notebooks_are_valid_with_unique_cell_ids():
    """nbformat 4.5 wants an id on every cell (papermill warns without, and will refuse)."""
    for path in reproduce.notebooks():
        raw = json.loads(path.read_text())   # (nbformat.read would fill missing ids in)
        ids = [cell.get("id") for cell in raw["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), path.name
        nbformat.validate(nbformat.from_dict(raw))


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
            # the point sets, and the setting the predictions ran with (``info``)
            assert set(table) - {"info"} == {"68", "51"} and table["68"]["all"]["n"] > 0
            assert isinstance(table.get("info", {}), dict)
    assert results["cascade_own_detector"]["validation"]["info"]["stages"] == pipeline.PREDICT_STAGES
    assert set(results["end_to_end"]["test"]["68"]) == {"all", "indoor", "outdoor"}
    # a first run that teaches: every approach learns past the mean shape, in the paper's
    # order (region and region + box trade places between runs at this budget, so only both
    # against end-to-end and the oracle), and our cascade ahead of end-to-end
    nme = {a: results[a]["validation"]["68"]["all"]["nme"]
           for a in ("mean_shape", "end_to_end", "region", "box", "oracle", "cascade")}
    assert nme["end_to_end"] < 0.9 * nme["mean_shape"], nme
    assert nme["oracle"] < min(nme["region"], nme["box"]), nme
    assert max(nme["region"], nme["box"]) < nme["end_to_end"], nme
    assert nme["cascade"] < nme["end_to_end"], nme
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


CPU_ONLY = {"keras_backend": "tensorflow", "accelerators": 0, "hint": "",
            "devices": [{"kind": "cpu", "name": "CPU", "id": "/device:CPU:0"}],
            "versions": {"python": "3.11.7", "keras": "3.15.1"}}


def _record(folder, name, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(fields))


def test_cpu_time_estimate_scales_recorded_speed_by_pixels_and_epochs(tmp_path, monkeypatch):
    from fkd_utils.pipeline import JAW_TARGET, model_specs
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    assert reproduce.cpu_time_estimate("full") is None
    cpu = tmp_path / "models" / "cpu"
    # an ablation variant only: 500 s for 1000 images x 5 epochs at 128 px, pooled for all
    _record(cpu, "ablation_x", train_time_s=500, fit_images=1000, epochs_run=5, input_size=128,
            target="points", devices=["/job:localhost/replica:0/task:0/device:CPU:0"])
    _record(cpu, "boxes_gpu", train_time_s=1, fit_images=1000, epochs_run=5, input_size=128,
            target="points", devices=["cuda:0"])     # a GPU's speed says nothing about the CPU
    specs = model_specs("full")
    speed = 500 / (1000 * 5 * 128 ** 2)
    images = {n: 1000 * (2 if s.target.startswith("region:") else 1)
              * (2 if s.target == JAW_TARGET else 1) for n, s in specs.items()}   # both halves
    budget = {n: 50 + s.anneal_epochs(50) for n, s in specs.items()}
    pooled = sum(speed * images[n] * budget[n] * s.input_size ** 2 for n, s in specs.items())
    estimate = reproduce.cpu_time_estimate("full")
    assert estimate["recorded"] == ["ablation_x"]
    assert estimate["at_most_h"] == pytest.approx(pooled / 3600)
    assert estimate["expected_h"] == pytest.approx(pooled / 3600)   # no namesake: whole budget
    # the end-to-end model's own record: its speed, and it stopped at half of its 30 epochs
    _record(cpu, "end_to_end", train_time_s=600, fit_images=1000, epochs_run=15, input_size=128)
    estimate = reproduce.cpu_time_estimate("full")
    own = 600 / 15 * 50 * (224 / 128) ** 2                # per epoch x budget x pixel ratio
    pooled_now = 1100 / (1000 * (5 + 15) * 128 ** 2)      # both CPU records pooled
    rest = (pooled - speed * 1000 * 50 * 224 ** 2) * pooled_now / speed
    assert estimate["at_most_h"] == pytest.approx((rest + own) / 3600)
    assert estimate["expected_h"] == pytest.approx((rest + own / 2) / 3600)


def test_full_profile_without_an_accelerator_needs_yes(tmp_path, monkeypatch, capsys):
    from fkd_utils import cli, devices
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    monkeypatch.setattr(devices, "query", lambda: CPU_ONLY)
    assert cli.main(["reproduce", "--profile", "full"]) == 2   # stdin is no terminal here
    err = capsys.readouterr().err
    assert "sees no accelerator" in err and "--yes" in err and "No CPU training speed" in err
    with pytest.raises(reproduce.NeedsConfirmation):
        reproduce.confirm_devices("full", CPU_ONLY, ask=lambda prompt: "n")
    reproduce.confirm_devices("full", CPU_ONLY, ask=lambda prompt: "y")   # answered yes
    reproduce.confirm_devices("full", CPU_ONLY, yes=True)
    reproduce.confirm_devices("cpu", CPU_ONLY)                           # meant for a CPU
    reproduce.confirm_devices("full", {**CPU_ONLY, "accelerators": 1})
    assert not (tmp_path / "runs").exists()                              # nothing ran
