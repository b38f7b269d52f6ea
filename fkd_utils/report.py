"""Accuracy tables from predictions (introduced in notebook 02).

One row per approach, points (68 / 51) and subset, with NME, AUC@0.08 and FR@0.08 in %.

Reference tables: the numbers measured on real faces (``fkd reproduce --profile real`` with the
shipped weights; notebook 06 with the ``cpu`` profile) are committed as small tables in
``fkd_utils/resources/reference/`` (numbers only: no image, no prediction), written by
``fkd report --profile P --reference``, so that a run on synthetic faces can show them beside
its own (:func:`show_reference`, :func:`reference_ablations`).
"""
import json
import shutil
from importlib import resources
from pathlib import Path

import pandas as pd

from .metrics import evaluate, nme

LABELS = {"mean_shape": "mean shape (baseline)", "end_to_end": "1. end-to-end",
          "region": "2. region-specific", "box": "3. region + box ResNet",
          "oracle": "oracle (GT regions, upper bound)", "cascade": "ours: cascade (3 stages)",
          "cascade_predict": "ours: cascade as fkd predict runs it",
          "cascade_own_detector": "ours: fkd predict, its own detector",
          "cascade_full_own_detector": "ours: cascade (3 stages, --flip --reframe 2), fkd predict's own detector",
          "dlib_300w_boxes": "dlib shape predictor, 300-W boxes",
          "dlib_own_detector": "dlib shape predictor, its own detector"}
ORDER = tuple(LABELS)


#: rows that name the setting they ran with (stages, runtime), where the predictions' info
#: (or a results.json entry's ``info``) says it
SETTING_LABELLED = ("cascade_predict", "cascade_own_detector")


def setting_text(info):
    """``stages 1-2 + regions, int8`` from a prediction's info."""
    stages = info["stages"]
    text = ("stage 1" if stages == 1 else f"stages 1-{stages}") + " + regions"
    return text + (", int8" if info.get("runtime") == "int8" else "")


def label(name, info=None):
    """An approach's row name; the cascade's fkd predict rows add the setting from ``info``."""
    base = LABELS.get(name, name)
    if name in SETTING_LABELLED and (info or {}).get("stages"):
        return f"{base} ({setting_text(info)})"
    return base


def results_frame(predictions, points=(68, 51), subsets=True):
    """A DataFrame of metrics for ``{name: Prediction}`` (see :mod:`fkd_utils.pipeline`)."""
    rows = []
    for name, pred in predictions.items():
        report = evaluate(pred.points, pred.gt, pred.subsets if subsets else None)
        for pts in points:
            for subset, row in report[str(pts)].items():
                rows.append({"approach": label(name, pred.info), "split": pred.split, "points": pts,
                             "subset": subset, "n": row["n"], "NME %": 100 * row["nme"],
                             "AUC@0.08 %": 100 * row["auc"], "FR@0.08 %": 100 * row["fr"]})
    return pd.DataFrame(rows).round(2)


def summary_frame(predictions, points=68):
    """The compact table: all images of a split, one row per approach."""
    frame = results_frame(predictions, (points,), subsets=False)
    return frame.drop(columns=["subset", "points"]).set_index("approach")


def errors_by_approach(predictions, points=68):
    """Per-image NME of each approach, for CED plots."""
    return {label(name, pred.info): nme(pred.points, pred.gt, points)
            for name, pred in predictions.items()}


def pose_frame(predictions, points=68, worst=0.05, bins=None):
    """NME (%) of each approach by head turn and on its hardest faces: one row per approach,
    columns ``all``, one per |yaw| bin (yaw estimated from the true points, see
    :mod:`fkd_utils.pose`; the header gives each bin's image count) and ``worst 5 %`` (the mean
    NME of that approach's own worst ``worst`` fraction of the images)."""
    import numpy as np
    from .pose import YAW_BINS, yaw_bin_labels, yaw_bins, yaw_degrees
    bins = bins or YAW_BINS
    rows = []
    for name, pred in predictions.items():
        errors = nme(pred.points, pred.gt, points)
        which = yaw_bins(yaw_degrees(pred.gt), bins)
        row = {"approach": label(name, pred.info), "all": 100 * np.mean(errors)}
        for k, text in enumerate(yaw_bin_labels(bins)):
            row[f"yaw {text}° ({int(np.sum(which == k))})"] = (
                100 * np.mean(errors[which == k]) if np.any(which == k) else np.nan)
        hardest = np.sort(errors)[-max(1, int(np.ceil(worst * len(errors)))):]
        row[f"worst {100 * worst:g} %"] = 100 * np.mean(hardest)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(results, split, points=68):
    """A Markdown table (one row per approach) from ``results.json`` content."""
    lines = ["| approach | images | NME % | AUC@0.08 % | FR@0.08 % |", "|---|---|---|---|---|"]
    names = sorted((n for n in results if split in results[n]),
                   key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    for name in names:
        row = results[name][split][str(points)]["all"]
        lines.append(f"| {label(name, results[name][split].get('info'))} | {row['n']} | "
                     f"{100 * row['nme']:.2f} | "
                     f"{100 * row['auc']:.1f} | {100 * row['fr']:.1f} |")
    return "\n".join(lines)


def frame_markdown(frame, digits=2):
    """A Markdown table of a DataFrame (numbers rounded, empty cells for missing values)."""
    def cell(v):
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}f}"
        return str(v)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def update_readme(readme, key, text):
    """Replace the block between ``<!-- key:begin -->`` and ``<!-- key:end -->`` in a file."""
    import re
    from pathlib import Path
    readme = Path(readme)
    content = readme.read_text()
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    if begin not in content or end not in content:
        raise ValueError(f"{readme}: no '{begin}' ... '{end}' block to fill")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", content))


def device_run_block(manifest, models, results, reference=None, reference_name="cpu",
                     wall_times=None, split="validation", points=68):
    """The README block of a profile's run on a given machine (``fkd report``): the devices,
    wall time per notebook, each model's training speed, and the accuracy next to another
    profile's (``reference``: its ``results.json`` content, e.g. the cpu profile's).

    ``manifest``: the run's ``results/<profile>/manifest.json``; ``models``: ``{name: model
    manifest}``; ``wall_times``: ``{notebook: seconds}`` summed over resumed calls, overriding
    the manifest's (which counts a resumed notebook's last call only).
    """
    from .devices import count_devices
    profile = manifest["profile"]
    device = count_devices(manifest.get("devices", [])) or "unknown devices"
    lines = [f"Profile `{profile['name']}` ({profile['image_size']} / {profile['region_size']} px, "
             f"up to {profile['epochs']} epochs) on {device}, Keras on "
             f"{manifest.get('keras_backend', '?')} (versions: "
             + ", ".join(f"{k} {v}" for k, v in manifest.get("packages", {}).items()
                         if k in ("keras", "jax", "tensorflow-cpu", "tensorflow")) + ").", "",
             "| notebook | wall time |", "|---|---|"]
    walls = {r["notebook"]: r.get("wall_time_s") for r in manifest.get("notebooks", [])}
    walls.update(wall_times or {})
    lines += [f"| {nb} | {_duration(s)} |" for nb, s in walls.items()]
    lines += ["", "| model | devices | epochs | train time | training images/s |",
              "|---|---|---|---|---|"]
    for name, m in sorted(models.items()):
        lines.append(f"| {name} | {m.get('data_parallel', 1)} x {', '.join(m.get('devices', ['?']))} "
                     f"| {m.get('epochs_run', '?')} | {_duration(m.get('train_time_s'))} | "
                     f"{m.get('train_images_per_s', '')} |")
    if results and any(split in v for v in results.values()):
        other = f" ({reference_name})"
        lines += ["", f"*{split} split, {points} points: profile `{profile['name']}` next to "
                      f"profile `{reference_name}`*", "",
                  f"| approach | images | NME % | NME %{other} | AUC@0.08 % | AUC@0.08 %{other} "
                  f"| FR@0.08 % | FR@0.08 %{other} |", "|---|---|---|---|---|---|---|---|"]
        names = sorted((n for n in results if split in results[n]),
                       key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
        for name in names:
            row = results[name][split][str(points)]["all"]
            ref = ((reference or {}).get(name, {}).get(split, {}).get(str(points), {})
                   .get("all"))
            cells = []
            for key, digits in (("nme", 2), ("auc", 1), ("fr", 1)):
                cells += [f"{100 * row[key]:.{digits}f}",
                          f"{100 * ref[key]:.{digits}f}" if ref else ""]
            lines.append(f"| {label(name, results[name][split].get('info'))} | {row['n']} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def _duration(seconds):
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else \
        f"{seconds // 60} min {seconds % 60:02d} s"


def device_run_report(profile, model_names, compare="cpu", wall_times=None):
    """:func:`device_run_block` from the files a run left under ``paths.home()``:
    ``results/<profile>/{manifest,results}.json``, the manifests of ``model_names`` and, when present,
    ``results/<compare>/results.json`` (else the ``real`` profile's: the cpu-trained shipped
    weights)."""
    import json
    from . import paths
    folder = paths.results_dir(profile)
    manifest = json.loads((folder / "manifest.json").read_text())
    results = json.loads((folder / "results.json").read_text())
    models = {p.stem: json.loads(p.read_text())
              for p in paths.model_manifests(profile) if p.stem in set(model_names)}
    reference, name = None, compare
    for candidate in (compare, "real"):
        path = paths.results_dir(candidate) / "results.json"
        if path.is_file():
            reference, name = json.loads(path.read_text()), candidate
            break
    return device_run_block(manifest, models, results, reference, name, wall_times)


# ---------------------------------------------------------------- reference tables

REFERENCE = "reference"


def reference_dir():
    """The package's folder of reference tables (in a clone: ``fkd_utils/resources/reference``)."""
    return Path(str(resources.files("fkd_utils") / "resources" / REFERENCE))


def write_reference(profile, out_dir=None):
    """Copy a profile's measured numbers into the reference tables: ``results.json`` (every
    approach, split, point set and subset: n, NME, AUC, FR) with the run's profile, data and
    time, and the ablation tables (``*ablations_*.csv``). Returns the files written."""
    from . import paths
    folder, out = paths.results_dir(profile), Path(out_dir or reference_dir())
    out.mkdir(parents=True, exist_ok=True)
    written = []
    results = folder / "results.json"
    if results.is_file() and json.loads(results.read_text()):  # (a notebook-06-only run has none)
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        content = {"profile": profile, "data": Path(manifest.get("data_dir", "?")).name,
                   "made_by": f"fkd reproduce --profile {profile}; fkd report --profile {profile} "
                              "--reference",
                   "platform": manifest.get("platform"), "results": json.loads(results.read_text())}
        written.append(out / f"{profile}_results.json")
        written[-1].write_text(json.dumps(content, indent=1) + "\n")
    for table in sorted(folder.glob("*ablations_*.csv")):
        written.append(out / f"{profile}_{table.name}")
        shutil.copyfile(table, written[-1])
    if not written:
        raise FileNotFoundError(f"{folder}: no results.json or ablation tables to copy; run "
                                f"'fkd reproduce --profile {profile}' first")
    return written


def reference_results(profile="real"):
    """The committed reference results of a profile (see :func:`write_reference`), or None."""
    path = reference_dir() / f"{profile}_results.json"
    return json.loads(path.read_text()) if path.is_file() else None


def reference_frame(split="validation", points=68, approaches=None, profile="real"):
    """The reference results as a table like :func:`summary_frame` (all images of a split),
    labelled in ``frame.attrs["caption"]``; None when no reference exists."""
    content = reference_results(profile)
    if content is None:
        return None
    results = content["results"]
    names = [n for n in (approaches or ORDER) if split in results.get(n, {})]
    rows = [{"approach": label(n, results[n][split].get("info")), "split": split, "n": results[n][split][str(points)]["all"]["n"],
             **{col: 100 * results[n][split][str(points)]["all"][key]
                for col, key in (("NME %", "nme"), ("AUC@0.08 %", "auc"), ("FR@0.08 %", "fr"))}}
            for n in names]
    frame = pd.DataFrame(rows).set_index("approach").round(2)
    frame.attrs["caption"] = (f"reference, real faces: profile `{profile}` on {content['data']}, "
                              f"{split} split, {points} points (committed numbers, made by "
                              f"`{content['made_by']}`)")
    return frame


def show_reference(data_dir, split="validation", points=68, approaches=None, profile="real"):
    """For a notebook measuring synthetic faces: print what the reference is and return the
    real-face table; on real data, say that the numbers above are real and return None."""
    from .data import is_synthetic
    if not is_synthetic(data_dir):
        print("this run measured real faces: the tables above are the real results")
        return None
    frame = reference_frame(split, points, approaches, profile)
    if frame is None:
        print(f"no reference tables for profile {profile} in {reference_dir()}")
        return None
    print(frame.attrs["caption"])
    return frame


def reference_ablations(name="paper_ablations_selection", profile="cpu"):
    """A committed ablation table (notebook 06: ``paper_ablations_selection``; notebook 09:
    ``our_ablations_validation``) as a DataFrame, or None."""
    path = reference_dir() / f"{profile}_{name}.csv"
    if not path.is_file():
        print(f"no reference table {path.name} in {reference_dir()}")
        return None
    table = pd.read_csv(path)
    print(f"reference, real faces: profile `{profile}`, {len(table)} variants trained, made by "
          f"`fkd reproduce --profile {profile} --data-dir ../shared/data/300w`; "
          f"`fkd report --profile {profile} --reference`")
    return table
