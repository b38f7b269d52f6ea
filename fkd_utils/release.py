"""The shipped weights folder, assembled: a trained weights folder (the ``cpu`` profile's, with
the paper's approaches) with some of its models replaced by longer-trained checkpoints of the
``release`` profile, then int8 models added for the models ``fkd predict`` runs by default.

    python -m fkd_utils.release --data-dir ../shared/data/300w --out weights/shipped \\
        --replace cascade_stage1=models/release/300w-6419e0cf6e/cascade_stage1.keras

(``make ship-weights``). The manifest is rewritten by :func:`landmarker.export_weights`, so its
validation metrics, detector calibrations and checksums describe the folder as shipped, and
``replaced`` says which models came from where. Nothing is written over: ``--out`` must not
exist (copy it into ``fkd_utils/weights/real/`` by hand after comparing it on the tenth).
"""
import argparse
import csv
import json
import math
import sys
from pathlib import Path

from .io import DataError
from .weights_io import import_model, read_weights_manifest, shipped_weights_dir


def merged_models(base_dir, replacements):
    """``{name: keras.Model}``: every model of ``base_dir`` with ``replacements`` (``{name:
    .keras file}``) put in; a replacement must match the model it replaces in shape, and one
    the folder lacks must be a model of the cascade, shaped as its spec says (added, e.g. the
    jaw ResNet)."""
    import keras
    from .pipeline import APPROACH_MODELS, check_model, model_specs
    manifest = read_weights_manifest(base_dir)
    unknown = sorted(set(replacements) - set(manifest["models"]) - set(APPROACH_MODELS["cascade"]))
    if unknown:
        raise DataError(f"{base_dir}: has no model {unknown} to replace, and the cascade has "
                        "no model of that name to add")
    models = {name: import_model(base_dir, name, manifest) for name in manifest["models"]}
    for name, path in replacements.items():
        if not Path(path).is_file():
            raise DataError(f"{path}: no such checkpoint (to replace {name})")
        new = keras.models.load_model(path, compile=False)
        if name not in models:   # added: it must be what the cascade expects of that name
            check_model(new, model_specs(manifest["profile"])[name], path)
        elif new.input_shape != models[name].input_shape or new.output_shape != models[name].output_shape:
            raise DataError(f"{path}: takes {new.input_shape} -> {new.output_shape}, but {name} "
                            f"takes {models[name].input_shape} -> {models[name].output_shape}")
        models[name] = new
    return models


def checkpoint_record(path):
    """Where a replacement came from: its file and, from the run's training manifest
    (``<name>.json`` beside ``<name>.keras`` or ``<name>.best.keras``), its profile, epochs,
    training time and best selection loss. A run's best checkpoint while it still trains (no
    manifest yet) gets its epochs so far and best selection loss from ``<name>.history.csv``."""
    path = Path(path)
    stem = path.name[: -len(".best.keras")] if path.name.endswith(".best.keras") else path.stem
    sidecar = path.with_name(stem + ".json")
    record = {"checkpoint": str(path)}
    if sidecar.is_file():
        trained = json.loads(sidecar.read_text())
        record.update({k: trained[k] for k in ("profile", "epochs_run", "train_time_s",
                                                 "best_val_loss", "learning_rate", "data_fingerprint")
                       if k in trained})
        return record
    history = path.with_name(stem + ".history.csv")
    if path.name.endswith(".best.keras") and history.is_file():
        with open(history, newline="") as fh:
            losses = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
        finite = [v for v in losses if math.isfinite(v)]
        if finite:  # (a run's folder is models/<profile>/<data fingerprint>/)
            record.update({"profile": path.parent.parent.name, "epochs_run": len(losses),
                           "best_val_loss": min(finite), "still_training": True})
    return record


def ship_weights(data_dir, out_dir, replacements, base_dir=None, int8_stages=2,
                 command="", log=print):
    """Write the shipped folder to ``out_dir`` (which must not exist): ``base_dir``'s models
    (default: the shipped ones) with ``replacements``, then int8 models for the cascade's first
    ``int8_stages`` stages and its region ResNets. Returns the manifest."""
    from .landmarker import export_weights
    from .pipeline import cascade_models
    from .quantize import quantize_weights
    base_dir = Path(base_dir or shipped_weights_dir())
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: exists already; choose another --out")
    base = read_weights_manifest(base_dir)
    models = merged_models(base_dir, replacements)
    export_weights(base["profile"], data_dir, base["approaches"], out_dir, command, models, log=log)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    manifest["replaced"] = {name: checkpoint_record(path) for name, path in replacements.items()}
    manifest["base_command"] = base.get("command", "")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return quantize_weights(out_dir, data_dir,
                            [n for n in cascade_models(int8_stages) if n in models], log=log)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fkd_utils.release",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--base", default=None, help="weights folder to start from (default: shipped)")
    parser.add_argument("--replace", action="append", default=[], metavar="NAME=CHECKPOINT.keras")
    parser.add_argument("--int8-stages", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        replacements = dict(item.split("=", 1) for item in args.replace)
    except ValueError:
        parser.error("--replace takes NAME=CHECKPOINT.keras")
    try:
        ship_weights(args.data_dir, args.out, replacements, args.base, args.int8_stages,
                     "python -m fkd_utils.release " + " ".join(argv or sys.argv[1:]))
    except (DataError, FileExistsError, ValueError) as err:
        print(f"fkd_utils.release: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
