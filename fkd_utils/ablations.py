"""One-setting-at-a-time ablations of the end-to-end model (notebook 06, paper Fig. 5a-d).

Each ablation trains approach 1 through the same code (:func:`fkd_utils.pipeline.get_model`)
with one setting changed: number of dense layers, optimizer, batch size, augmentation on/off.
The profile sets the budget (``ablation_epochs``, ``ablation_batch_sizes``). Models are
evaluated on the held-out tenth of the training images that drives model selection (the role
the paper's validation set plays), so no measured split is used to choose anything.
"""
from dataclasses import replace

import numpy as np

from .augment import NO_AUGMENT
from .metrics import nme
from .pipeline import get_model, model_specs, predict_points, training_arrays
from .profiles import get_profile


def settings(profile):
    """``{setting: {label: spec changes}}`` for the profile."""
    p = get_profile(profile)
    return {
        "dense layers": {f"{k} dense": {"dense_layers": k} for k in (1, 2, 3)},
        "optimizer": {name: {"optimizer": name} for name in ("adam", "sgd", "rmsprop")},
        "batch size": {f"batch {b}": {"batch_size": b} for b in p.ablation_batch_sizes},
        "augmentation": {"with augmentation": {}, "without": {"augment": NO_AUGMENT}},
    }


def _model_name(setting, label):
    return "ablation_" + "".join(c if c.isalnum() else "_" for c in f"{setting}_{label}")


def run_setting(setting, profile, data_dir, retrain=False, seed=0, verbose=0):
    """Train every variant of one setting; returns ``{label: per-image errors (68 points)}``
    on the selection set, plus the training times under the key ``"_time_s"``."""
    p = get_profile(profile)
    base = model_specs(p)["end_to_end"]
    _, (images, points), _ = training_arrays(base, data_dir, p, seed)
    errors, times = {}, {}
    for label, changes in settings(p)[setting].items():
        spec = replace(base, **changes)
        # variants equal to the baseline (1 dense, adam, batch 16, augmented) share one model
        name = "ablation_baseline" if spec == base else _model_name(setting, label)
        spec = replace(spec, name=name)
        model = get_model(name, p, data_dir, retrain, verbose, seed, specs={name: spec},
                          epochs=p.ablation_epochs)
        pred = predict_points(model, images)
        errors[label] = nme(pred, points)
        from .pipeline import model_path, read_manifest
        times[label] = (read_manifest(model_path(p, name)) or {}).get("train_time_s", np.nan)
    errors["_time_s"] = times
    return errors
