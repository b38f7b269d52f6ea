"""The ablation grids: each variant changes one setting of its baseline, and the table rows
carry the right numbers."""
from dataclasses import fields, replace

import numpy as np
import pytest

from fkd_utils import ablations, pipeline
from fkd_utils.profiles import get_profile


def _changed(a, b):
    return {f.name for f in fields(a) if f.name != "name" and getattr(a, f.name) != getattr(b, f.name)}


@pytest.mark.parametrize("profile", ["quick", "cpu"])
def test_our_variants_change_one_thing_or_share_the_baseline(profile):
    base = ablations.our_baseline(profile)
    assert base.head == "spatial" and "head" in ablations.our_settings(profile)["head and loss"][
        "integral head (heatmaps, soft-argmax), L1"]
    for setting, table in ablations.our_settings(profile).items():
        variants = list(ablations._variants(base, table, "ours_"))
        assert len(variants) == len(table) >= 2, setting
        names = [spec.name for _, spec in variants]
        assert names.count("ours_baseline") == 1, setting   # the baseline is in every setting
        for label, spec in variants:
            changed = _changed(spec, base)
            assert (spec.name == "ours_baseline") == (not changed), label
            assert set(changed) <= set(table[label]), label
        assert len(set(names)) == len(names)


def test_full_budget_setting_compares_heads_on_the_cascade_stage():
    p = get_profile("cpu")
    variants, epochs = ablations._plan(ablations.FULL_BUDGET, p)
    (_, ours), (_, plain), (_, fine), (_, spatial) = variants
    assert epochs == p.epochs > p.ablation_epochs
    assert ours == pipeline.model_specs(p)["cascade_stage2"] and ours.head == "integral"
    assert ours.anneal > 0 and _changed(plain, ours) == {"anneal"} and plain.anneal == 0
    assert _changed(fine, ours) == {"head"} and fine.head == "fine_integral"
    assert _changed(spatial, plain) == {"head"} and spatial.head == "spatial"
    assert ablations.our_setting_names(p)[-1] == ablations.FULL_BUDGET


def test_input_sizes_come_from_the_profile():
    sizes = ablations.our_settings("cpu")["input size"]
    assert [v["input_size"] for v in sizes.values()] == [96, 128, 160, 224]
    quick = ablations.our_settings(get_profile("quick"))["input size"]
    assert [v["input_size"] for v in quick.values()] == [32, 48]


def test_paper_settings_vary_the_end_to_end_model():
    base = pipeline.model_specs("cpu")["end_to_end"]
    batch = dict(ablations._variants(base, ablations.settings("cpu")["batch size"], "ablation_"))
    assert batch["batch 16"].name == "ablation_baseline"      # the profile's batch size
    assert batch["batch 256"].batch_size == 256


def test_as_rows_hand_worked():
    errors = np.array([0.02, 0.04, 0.10, 0.06])
    rows = ablations.as_rows({"loss": {"L1": errors, "_time_s": {"L1": 12.0}}})
    assert len(rows) == 1
    row = rows[0]
    assert row["setting"] == "loss" and row["variant"] == "L1" and row["train s"] == 12.0
    assert row["NME %"] == pytest.approx(5.5)
    assert row["FR@0.08 %"] == pytest.approx(25.0)
    # AUC@0.08 of a step CED: errors 0.02/0.04/0.06 -> 1/4, 2/4, 3/4 of the images
    assert row["AUC@0.08 %"] == pytest.approx(100 * (0.06 + 0.04 + 0.02) / 4 / 0.08, abs=0.7)


def test_reference_rows_from_saved_predictions(monkeypatch, tmp_path):
    from fkd_utils import pipeline as pl
    gt = np.random.default_rng(0).random((3, 68, 2)) * 100
    saved = {"mean_shape": pl.Prediction("mean_shape", "validation", np.array(["a", "b", "c"]),
                                         gt.copy(), np.array(["x"] * 3), gt)}
    calls = []

    def fake_load_saved(profile, data_dir, split):
        calls.append(getattr(profile, "name", profile))
        return saved if calls[-1] == "real" else {}
    monkeypatch.setattr(pl, "load_saved", fake_load_saved)
    rows = ablations.reference_rows("cpu", tmp_path, "validation")   # real data: falls back
    assert calls == ["cpu", "real"]
    assert list(rows["setting"]) == ["reference"] and rows["NME %"].iloc[0] == 0.0
    (tmp_path / "README.md").write_text("Synthetic faces in the 300-W layout")
    assert ablations.reference_rows("cpu", tmp_path, "validation").empty   # no fallback
