"""Results tables: hand-built results give the rows they should; README blocks are replaced
in place; ``fkd report`` fills the results and ablation blocks from the files."""
import json

import numpy as np
import pandas as pd
import pytest

from fkd_utils import cli, paths, report


def _results():
    row = lambda nme, n=10: {"all": {"n": n, "nme": nme, "auc": 0.5, "fr": 0.1}}
    return {"cascade": {"validation": {"68": row(0.0412), "51": row(0.031)}},
            "mean_shape": {"validation": {"68": row(0.17), "51": row(0.18)}},
            "end_to_end": {"test": {"68": row(0.08), "51": row(0.07)}}}


def test_markdown_table_rows_in_the_papers_order():
    lines = report.markdown_table(_results(), "validation").splitlines()
    assert lines[0].startswith("| approach |") and len(lines) == 4   # header, rule, 2 rows
    assert lines[2] == "| mean shape (baseline) | 10 | 17.00 | 50.0 | 10.0 |"
    assert lines[3] == "| ours: cascade (3 stages) | 10 | 4.12 | 50.0 | 10.0 |"


def test_frame_markdown():
    frame = pd.DataFrame({"variant": ["a", "b"], "NME %": [4.123, float("nan")]})
    assert report.frame_markdown(frame).splitlines() == [
        "| variant | NME % |", "|---|---|", "| a | 4.12 |", "| b |  |"]


def test_update_readme_replaces_only_its_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("top\n<!-- x:begin -->\nold\n<!-- x:end -->\nbottom\n")
    report.update_readme(readme, "x", "new\ntable")
    assert readme.read_text() == "top\n<!-- x:begin -->\nnew\ntable\n<!-- x:end -->\nbottom\n"
    with pytest.raises(ValueError, match="no '<!-- y:begin -->'"):
        report.update_readme(readme, "y", "text")


def _report_full(tmp_path, readme_text, write_results):
    """``fkd report --profile full --readme`` over results written by ``write_results(folder)``;
    the results folder is emptied afterwards. Returns the README's new text."""
    folder = paths.results_dir("full")
    folder.mkdir(parents=True, exist_ok=True)
    write_results(folder)
    readme = tmp_path / "README.md"
    readme.write_text(readme_text)
    try:
        assert cli.main(["report", "--profile", "full", "--readme", str(readme)]) == 0
    finally:
        for f in folder.iterdir():
            f.unlink()
    return readme.read_text()


def test_fkd_report_fills_results_and_ablation_blocks(fkd_home, tmp_path, capsys):
    def write(folder):
        (folder / "results.json").write_text(json.dumps(_results()))
        pd.DataFrame({"setting": ["loss"], "variant": ["L1"], "NME %": [5.25]}).to_csv(
            folder / "our_ablations_validation.csv", index=False)
    text = _report_full(tmp_path, "<!-- results:full:begin -->\n<!-- results:full:end -->\n"
                        "<!-- ablations:full:begin -->\n<!-- ablations:full:end -->\n", write)
    assert "| ours: cascade (3 stages) | 10 | 4.12 | 50.0 | 10.0 |" in text
    assert "| loss | L1 | 5.25 |" in text and "notebook 09, validation split" in text
    assert "test split, 51 points" in text   # every split present in the results


def test_fkd_report_without_results_says_what_to_run(fkd_home, capsys):
    assert cli.main(["report", "--profile", "cpu"]) == 2
    assert "fkd reproduce --profile cpu" in capsys.readouterr().err


def _metrics(nme, auc, fr, n=330):
    return {"68": {"all": {"n": n, "nme": nme, "auc": auc, "fr": fr}}}


def test_device_run_block_names_the_device_times_and_the_reference():
    from fkd_utils.report import device_run_block
    manifest = {"profile": {"name": "full", "image_size": 224, "region_size": 96, "epochs": 50},
                "keras_backend": "jax", "packages": {"keras": "3.15.1", "jax": "0.10.2"},
                "devices": [{"kind": "gpu", "name": "NVIDIA H200", "id": "gpu:0"}],
                "notebooks": [{"notebook": "02_end_to_end.ipynb", "wall_time_s": 65.0},
                              {"notebook": "03_region_specific.ipynb", "wall_time_s": 30.0}]}
    models = {"end_to_end": {"data_parallel": 1, "devices": ["cuda:0"], "epochs_run": 23,
                             "train_time_s": 41.0, "train_images_per_s": 1130.5}}
    results = {"end_to_end": {"validation": _metrics(0.0512, 0.401, 0.021)},
               "ours_new": {"validation": _metrics(0.04, 0.5, 0.01)}}
    reference = {"end_to_end": {"validation": _metrics(0.0755, 0.154, 0.291)}}
    text = device_run_block(manifest, models, results, reference, "cpu",
                            wall_times={"03_region_specific.ipynb": 4000.0})
    assert "on 1 x gpu (NVIDIA H200), Keras on jax" in text and "jax 0.10.2" in text
    assert "| 02_end_to_end.ipynb | 1 min 05 s |" in text
    assert "| 03_region_specific.ipynb | 1 h 06 min |" in text   # the summed wall time wins
    assert "| end_to_end | 1 x cuda:0 | 23 | 0 min 41 s | 1130.5 |" in text
    assert "| 1. end-to-end | 330 | 5.12 | 7.55 | 40.1 | 15.4 | 2.1 | 29.1 |" in text
    assert "| ours_new | 330 | 4.00 |  | 50.0 |  | 1.0 |  |" in text     # no reference row


def test_reference_tables_round_trip_and_label_themselves(fkd_home, tmp_path, capsys):
    folder = paths.results_dir("full")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(_results()))
    (folder / "manifest.json").write_text(json.dumps({"data_dir": "/somewhere/300w"}))
    pd.DataFrame({"setting": ["optimizer"], "variant": ["sgd"], "NME %": [9.5]}).to_csv(
        folder / "paper_ablations_selection.csv", index=False)
    try:
        written = report.write_reference("full", tmp_path)
    finally:
        for f in folder.iterdir():
            f.unlink()
    assert sorted(p.name for p in written) == ["full_paper_ablations_selection.csv",
                                               "full_results.json"]
    content = json.loads((tmp_path / "full_results.json").read_text())
    assert content["results"] == _results() and content["data"] == "300w"


def test_committed_reference_is_the_real_profile_on_real_faces(capsys):
    frame = report.reference_frame("validation", 68, ["mean_shape", "end_to_end", "cascade"])
    if frame is None:
        pytest.skip("no reference tables committed yet (fkd report --profile real --reference)")
    assert list(frame.index) == ["mean shape (baseline)", "1. end-to-end", "ours: cascade (3 stages)"]
    assert "real faces" in frame.attrs["caption"] and "profile `real`" in frame.attrs["caption"]
    # learning shows on real faces: both approaches far below the mean shape's error
    nme = frame["NME %"]
    assert nme["ours: cascade (3 stages)"] < nme["1. end-to-end"] < nme["mean shape (baseline)"]


def test_show_reference_only_beside_synthetic_runs(tiny_data, tmp_path, capsys):
    real_looking = tmp_path / "real"
    real_looking.mkdir()
    assert report.show_reference(real_looking) is None
    assert "real faces" in capsys.readouterr().out
    shown = report.show_reference(tiny_data)
    if shown is not None:
        assert "reference, real faces" in capsys.readouterr().out


def test_fkd_report_fills_the_fig5_block(fkd_home, tmp_path):
    text = _report_full(tmp_path, "<!-- fig5:full:begin -->\n<!-- fig5:full:end -->\n",
                        lambda folder: pd.DataFrame(
                            {"setting": ["optimizer"], "variant": ["sgd"], "NME %": [9.5]}
                        ).to_csv(folder / "paper_ablations_selection.csv", index=False))
    assert "| optimizer | sgd | 9.50 |" in text


def _shifted(gt, fraction):
    """``gt`` with every point moved right by ``fraction`` of its outer-eye-corner distance:
    an NME of exactly ``fraction``."""
    from fkd_utils.metrics import interocular
    return gt + np.stack([interocular(gt[None])[0] * fraction, 0.0])


def test_pose_frame_bins_faces_by_yaw_and_averages_the_worst():
    from fkd_utils import pipeline
    from fkd_utils.synthetic import mean_face_shape
    frontal = mean_face_shape() * 200 + 300
    turned = frontal.copy()
    turned[30, 0] = frontal[0, 0] + 0.75 * (frontal[16, 0] - frontal[0, 0])   # yaw 30 degrees
    gt = np.stack([frontal, turned])
    points = np.stack([_shifted(frontal, 0.02), _shifted(turned, 0.06)])
    pred = pipeline.Prediction("cascade", "validation", np.array(["a", "b"]), points,
                               np.array(["x", "x"]), gt)
    row = report.pose_frame({"cascade": pred}, worst=0.5).iloc[0]
    assert row["approach"] == "ours: cascade (3 stages)"
    assert row["all"] == pytest.approx(4.0)
    assert row["yaw 0-15° (1)"] == pytest.approx(2.0)
    assert row["yaw 30-45° (1)"] == pytest.approx(6.0)
    assert np.isnan(row["yaw 15-30° (0)"]) and np.isnan(row["yaw 45-90° (0)"])
    assert row["worst 50 %"] == pytest.approx(6.0)


def test_fkd_report_prints_a_block_the_readme_lacks(fkd_home, tmp_path, capsys):
    text = _report_full(tmp_path, "no blocks here\n", lambda folder: (
        folder / "results.json").write_text(json.dumps(_results())))
    out = capsys.readouterr()
    assert "| ours: cascade (3 stages) | 10 | 4.12 |" in out.out
    assert "no '<!-- results:full:begin -->'" in out.err and "printed only" in out.err
    assert text == "no blocks here\n"


def test_fkd_predict_rows_name_the_setting_they_ran_with():
    from fkd_utils import plots
    info = {"stages": 2, "runtime": "int8", "detector": "hog"}
    assert (report.label("cascade_own_detector", info)
            == "ours: fkd predict, its own detector (stages 1-2 + regions, int8)")
    assert (report.label("cascade_predict", {"stages": 1})
            == "ours: cascade as fkd predict runs it (stage 1 + regions)")
    # results without the setting (older runs) get the bare name, never a guessed setting
    assert report.label("cascade_own_detector") == "ours: fkd predict, its own detector"
    assert report.label("end_to_end", info) == "1. end-to-end"
    assert plots.colour(report.label("cascade_own_detector", info)) == plots.colour("cascade_own_detector")
    table = report.markdown_table({"cascade_own_detector": {"validation": {
        "68": {"all": {"n": 3, "nme": 0.05, "auc": 0.4, "fr": 0.0}}, "info": info}}}, "validation")
    assert "| ours: fkd predict, its own detector (stages 1-2 + regions, int8) | 3 | 5.00 |" in table


def test_collected_results_carry_the_predictions_setting(tmp_path):
    from fkd_utils import pipeline
    path = pipeline.save_predictions(tmp_path / "x_validation.npz", ["a"], np.zeros((1, 68, 2)),
                                     info=json.dumps({"stages": 2}))
    assert pipeline.prediction_info(path) == {"stages": 2}
    bare = pipeline.save_predictions(tmp_path / "y_validation.npz", ["a"], np.zeros((1, 68, 2)))
    assert pipeline.prediction_info(bare) == {}


def test_fkd_report_fills_the_pose_block_from_saved_predictions(fkd_home, tiny_data, tmp_path,
                                                                capsys):
    from fkd_utils import pipeline
    from fkd_utils.data import ground_truth
    ids, _, gt = ground_truth(tiny_data, "validation")
    shifted = gt + np.array([1.0, 0.0])  # every point one pixel to the right

    def write(folder, data_dir):
        (folder / "results.json").write_text(json.dumps(_results()))
        (folder / "manifest.json").write_text(json.dumps({"data_dir": str(data_dir)}))
        pipeline.save_predictions(folder / "cascade_own_detector_validation.npz", ids, shifted,
                                  info=json.dumps({"stages": 2, "runtime": "int8"}))

    block = "<!-- pose:full:begin -->\n<!-- pose:full:end -->\n"
    text = _report_full(tmp_path, block, lambda folder: write(folder, tiny_data))
    row = next(line for line in text.splitlines()
               if line.startswith("| ours: fkd predict, its own detector (stages 1-2 + regions, int8) |"))
    expected = 100 * _mean_nme(shifted, gt)
    assert f"| {expected:.2f} |" in row  # the "all" column: one pixel over each face's eye distance
    assert "worst 5 %" in text
    capsys.readouterr()
    text = _report_full(tmp_path, block, lambda folder: write(folder, tmp_path / "gone"))
    assert "pose table skipped: the data set" in capsys.readouterr().err
    assert text == block  # left as it was


def _mean_nme(points, gt):
    from fkd_utils.metrics import nme
    return nme(points, gt).mean()
