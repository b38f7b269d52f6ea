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
    monkeypatch.setenv("FKD_HOME", str(tmp_path))
    assert reproduce.cpu_time_estimate("full") is None
    cpu = tmp_path / "models" / "cpu"
    # 600 s for 15 of its 30 epochs at 128 px; full: 224 px, 50 epochs
    _record(cpu, "end_to_end", train_time_s=600, fit_images=1000, epochs_run=15, input_size=128)
    _record(cpu, "boxes", train_time_s=6, fit_images=1000, epochs_run=15, input_size=128,
            devices=["cuda:0"])                        # a GPU's speed says nothing about the CPU
    _record(cpu, "ablation_x", train_time_s=6, fit_images=10, epochs_run=1, input_size=128)
    estimate = reproduce.cpu_time_estimate("full")
    at_most = 600 / 15 * 50 * (224 / 128) ** 2        # per epoch x budget x pixel ratio
    assert estimate["models"] == ["end_to_end"] and "boxes" in estimate["missing"]
    assert estimate["at_most_h"] == pytest.approx(at_most / 3600)
    assert estimate["expected_h"] == pytest.approx(at_most / 2 / 3600)  # stopped at half budget


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
