"""One-setting-at-a-time ablations (notebooks 06 and 09).

Each variant trains a model through the same code (:func:`fkd_utils.pipeline.get_model`) with
one setting changed, with the profile's budget (``ablation_epochs``, ``ablation_batch_sizes``).

* Notebook 06 (paper Fig. 5a-d): the paper's end-to-end model, varying dense layers, optimizer,
  batch size and augmentation, evaluated on the held-out tenth of the training images that
  drives model selection (the role the paper's validation set plays).
* Notebook 09 (ours): the first stage of our cascade (with the spatial head), varying head,
  loss, target standardisation, input size and precision, then heads, heatmap size and the
  annealing epochs at the full budget on stage 2 of the cascade (whose first variant is the
  cascade's own stage 2: ``retrain=True`` retrains it), *measured* on the validation split (the
  real copy's HELEN test images) next to the baselines; nothing is chosen on it automatically.
"""
from dataclasses import replace

import numpy as np
import pandas as pd

from .augment import NO_AUGMENT
from .metrics import nme
from .pipeline import (face_set, get_model, model_path, model_specs, predict_faces, predict_points,
                       read_manifest, training_arrays)
from .profiles import get_profile


def settings(profile):
    """The paper's ablations: ``{setting: {label: spec changes}}`` for the profile."""
    p = get_profile(profile)
    return {
        "dense layers": {f"{k} dense": {"dense_layers": k} for k in (1, 2, 3)},
        "optimizer": {name: {"optimizer": name} for name in ("adam", "sgd", "rmsprop")},
        # the profile's own batch size is the baseline (None), trained once
        "batch size": {f"batch {b}": {"batch_size": None if b == p.batch_size else b}
                       for b in p.ablation_batch_sizes},
        "augmentation": {"with augmentation": {}, "without": {"augment": NO_AUGMENT}},
    }


def our_baseline(profile):
    """The model notebook 09 varies: the first stage of our cascade with the spatial head, the
    head our other settings (target standardisation above all) were measured with, and without
    annealing epochs (the short budget has none); the integral head is one of the variants."""
    return replace(model_specs(profile)["cascade_stage1"], head="spatial", anneal=0.0)


def our_settings(profile):
    """Our model's ablations around :func:`our_baseline`."""
    p = get_profile(profile)
    paper_head = {"head": "paper", "loss": "mse", "precision": "float32", "reduce_lr": False}
    return {
        "head and loss": {"paper head, MSE": paper_head,
                          "spatial head, MSE": {"loss": "mse"},
                          "spatial head, L1": {},
                          "spatial head, Wing": {"loss": "wing"},
                          "integral head (heatmaps, soft-argmax), L1": {"head": "integral"}},
        "target standardisation": {"standardised": {}, "raw pixels": {"standardize": False}},
        "input size": {f"{s} px": {"input_size": s}
                       for s in sorted({p.image_size, *p.ablation_input_sizes})},
        "precision": {"mixed bfloat16": {"precision": "mixed_bfloat16"},
                      "float32": {"precision": "float32"}},
    }


#: The heads again at the full training budget, and the schedule's last epochs: 5 epochs favour
#: the spatial head, which starts faster; the integral head overtakes it later. Stage 2 of the
#: cascade (crops placed by the true shape, margin 0.3) is the model; its first variant is the
#: shipped stage itself (30 epochs, then 6 with the learning rate annealed).
FULL_BUDGET = "head and schedule, full budget (cascade stage 2)"


def our_setting_names(profile):
    """Notebook 09's settings, in order: every one, or those the profile names."""
    p = get_profile(profile)
    names = list(our_settings(p)) + [FULL_BUDGET]
    return [n for n in names if p.our_ablations is None or n in p.our_ablations]


def _plan(setting, profile):
    """(label, spec) of each variant of one of our settings, and its epochs."""
    p = get_profile(profile)
    if setting == FULL_BUDGET:
        ours = model_specs(p)["cascade_stage2"]
        plain = {"anneal": 0.0}
        return [("integral head, annealed (ours)", ours),
                ("integral head, no annealing", replace(ours, **plain, name="ours_full_integral_head")),
                ("32 x 32 heatmaps, annealed",
                 replace(ours, head="fine_integral", name="ours_full_fine_integral_head")),
                ("spatial head, no annealing",
                 replace(ours, head="spatial", **plain, name="ours_full_spatial_head"))], p.epochs
    return list(_variants(our_baseline(p), our_settings(p)[setting], "ours_")), p.ablation_epochs


def _model_name(prefix, setting, label):
    return prefix + "".join(c if c.isalnum() else "_" for c in f"{setting}_{label}")


def _train_time(profile, name, data_dir):
    return (read_manifest(model_path(profile, name, data_dir)) or {}).get("train_time_s", np.nan)


def _variants(base, table, prefix):
    for label, changes in table.items():
        spec = replace(base, **changes)
        # variants equal to the baseline share one model
        name = f"{prefix}baseline" if spec == base else _model_name(prefix, "", label)
        yield label, replace(spec, name=name)


def run_setting(setting, profile, data_dir, retrain=False, seed=0, verbose=0, train=True):
    """Train every variant of one of the paper's settings; returns ``{label: per-image errors
    (68 points)}`` on the selection set, and the training times under ``"_time_s"``.
    ``train=False`` measures only the variants already trained (a partial run's tables)."""
    p = get_profile(profile)
    base = model_specs(p)["end_to_end"]
    _, (images, points), _ = training_arrays(base, data_dir, p, seed)
    errors, times = {}, {}
    for label, spec in _variants(base, settings(p)[setting], "ablation_"):
        if not train and not model_path(p, spec.name).is_file():
            continue
        model = get_model(spec.name, p, data_dir, retrain, verbose, seed, specs={spec.name: spec},
                          epochs=p.ablation_epochs)
        errors[label] = nme(predict_points(model, images), points)
        times[label] = _train_time(p, spec.name, data_dir)
    errors["_time_s"] = times
    return errors


def run_our_setting(setting, profile, data_dir, split="validation", retrain=False, seed=0,
                    verbose=0):
    """Train every variant of one of our settings; returns ``{label: per-image errors}``
    (68 points) measured on ``split``, and the training times under ``"_time_s"``."""
    p = get_profile(profile)
    variants, epochs = _plan(setting, p)
    errors, times = {}, {}
    for label, spec in variants:
        model = get_model(spec.name, p, data_dir, retrain, verbose, seed, specs={spec.name: spec},
                          epochs=epochs)
        faces = face_set(spec, data_dir, split, p)
        errors[label] = nme(predict_faces(model, faces), faces["points"])
        times[label] = _train_time(p, spec.name, data_dir)
    errors["_time_s"] = times
    return errors


def as_rows(runs):
    """Table rows (setting, variant, NME/AUC/FR in %, training seconds) from ``run_*`` results."""
    from .metrics import auc, failure_rate
    return [{"setting": setting, "variant": label, "NME %": 100 * e.mean(),
             "AUC@0.08 %": 100 * auc(e), "FR@0.08 %": 100 * failure_rate(e),
             "train s": errors["_time_s"][label]}
            for setting, errors in runs.items() for label, e in errors.items()
            if not label.startswith("_")]


def reference_rows(profile, data_dir, split):
    """The saved predictions of this profile (mean shape, the paper's approaches, dlib, our
    cascade) as ``setting = "reference"`` rows; on real faces without them, those of the
    shipped weights (``fkd reproduce --profile real``). Empty when nothing is saved."""
    from .data import is_synthetic
    from .pipeline import load_saved
    from .report import summary_frame
    saved = load_saved(profile, data_dir, split)
    if not saved and not is_synthetic(data_dir):
        saved = load_saved("real", data_dir, split)
    columns = ["setting", "variant", "NME %", "AUC@0.08 %", "FR@0.08 %"]
    if not saved:
        return pd.DataFrame(columns=columns)
    frame = summary_frame(saved, 68).reset_index().rename(columns={"approach": "variant"})
    return frame.assign(setting="reference")[columns]
