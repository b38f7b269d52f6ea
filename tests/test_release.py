"""Assembling the shipped folder (``python -m fkd_utils.release``): a checkpoint replaces only a
model of the same shape, named problems are clear errors, nothing is written over, and the
assembled folder lists where each replacement came from."""
import json

import numpy as np
import pytest

from fkd_utils import release, weights_io
from fkd_utils.io import DataError


@pytest.fixture(scope="module")
def nose_checkpoint(untrained_weights, tmp_path_factory):
    """A .keras checkpoint of the base folder's nose model with its weights changed, and a
    training manifest beside it as ``fkd train`` writes one."""
    model = weights_io.import_model(untrained_weights, "cascade_region_nose")
    model.set_weights([w + 0.5 for w in model.get_weights()])
    out = tmp_path_factory.mktemp("ckpt")
    model.save(out / "cascade_region_nose.keras")
    (out / "cascade_region_nose.json").write_text(json.dumps(
        {"profile": "release", "epochs_run": 7, "best_val_loss": 1.25, "seed": 0}))
    return out / "cascade_region_nose.keras"


def test_a_checkpoint_replaces_the_model_of_its_name(untrained_weights, nose_checkpoint):
    models = release.merged_models(untrained_weights, {"cascade_region_nose": nose_checkpoint})
    base = weights_io.import_model(untrained_weights, "cascade_region_nose")
    for new, old in zip(models["cascade_region_nose"].get_weights(), base.get_weights()):
        np.testing.assert_allclose(new, old + 0.5, rtol=1e-2, atol=1e-2)  # float16 base
    kept = weights_io.import_model(untrained_weights, "cascade_stage1")
    for new, old in zip(models["cascade_stage1"].get_weights(), kept.get_weights()):
        np.testing.assert_array_equal(new, old)


def test_replacement_problems_are_named(untrained_weights, nose_checkpoint, tmp_path):
    with pytest.raises(DataError, match=r"has no model \['boxes'\]"):
        release.merged_models(untrained_weights, {"boxes": nose_checkpoint})
    with pytest.raises(DataError, match="no such checkpoint"):
        release.merged_models(untrained_weights, {"cascade_stage1": tmp_path / "nope.keras"})
    with pytest.raises(DataError, match="but cascade_stage1 takes"):
        release.merged_models(untrained_weights, {"cascade_stage1": nose_checkpoint})


def test_a_cascade_model_the_folder_lacks_is_added(untrained_weights, tmp_path):
    import shutil
    base = tmp_path / "old"
    shutil.copytree(untrained_weights, base)   # a folder from before the jaw ResNet
    manifest = json.loads((base / "manifest.json").read_text())
    jaw = weights_io.import_model(untrained_weights, "cascade_region_jaw", manifest)
    del manifest["models"]["cascade_region_jaw"]
    (base / "manifest.json").write_text(json.dumps(manifest))
    jaw.save(tmp_path / "jaw.keras")
    models = release.merged_models(base, {"cascade_region_jaw": tmp_path / "jaw.keras"})
    assert set(models) == set(manifest["models"]) | {"cascade_region_jaw"}
    for new, old in zip(models["cascade_region_jaw"].get_weights(), jaw.get_weights()):
        np.testing.assert_array_equal(new, old)
    with pytest.raises(DataError, match="no model of that name to add"):
        release.merged_models(base, {"cascade_region_chin": tmp_path / "jaw.keras"})
    weights_io.import_model(untrained_weights, "cascade_stage1").save(tmp_path / "stage.keras")
    with pytest.raises(DataError, match="cascade_region_jaw needs"):
        release.merged_models(base, {"cascade_region_jaw": tmp_path / "stage.keras"})


def test_the_checkpoint_record_reads_the_training_manifest(nose_checkpoint, tmp_path):
    record = release.checkpoint_record(nose_checkpoint)
    assert record == {"checkpoint": str(nose_checkpoint), "profile": "release",
                      "epochs_run": 7, "best_val_loss": 1.25}
    assert release.checkpoint_record(tmp_path / "x.keras") == {"checkpoint": str(tmp_path / "x.keras")}
    # a run's best checkpoint while it still trains: epochs so far and the best loss from its history
    run = tmp_path / "release" / "300w-0123"
    run.mkdir(parents=True)
    (run / "cascade_stage3.history.csv").write_text(
        "epoch,learning_rate,loss,val_loss\n0,0.0003,1.4,1.48\n1,0.0003,1.3,1.39\n2,0.0003,1.2,1.41\n")
    best = run / "cascade_stage3.best.keras"
    assert release.checkpoint_record(best) == {"checkpoint": str(best), "profile": "release",
                                               "epochs_run": 3, "best_val_loss": 1.39,
                                               "still_training": True}
    # once the run has finished, its best checkpoint reads the run's manifest instead
    (run / "cascade_stage3.json").write_text(json.dumps({"profile": "release", "epochs_run": 9,
                                                         "train_time_s": 60.0}))
    assert release.checkpoint_record(best) == {"checkpoint": str(best), "profile": "release",
                                               "epochs_run": 9, "train_time_s": 60.0}


def test_ship_weights_never_writes_over_a_folder(untrained_weights, tiny_data, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="exists already"):
        release.ship_weights(tiny_data, tmp_path / "out", {}, untrained_weights)
    assert release.main(["--data-dir", str(tiny_data), "--out", str(tmp_path / "out"),
                         "--base", str(untrained_weights)]) == 2
    with pytest.raises(SystemExit):
        release.main(["--data-dir", str(tiny_data), "--out", str(tmp_path / "o2"),
                      "--replace", "no-equals-sign"])
