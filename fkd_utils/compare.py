"""``fkd predict``'s settings and weights folders side by side, end to end from the image files
with its own face detector: NME, FR@0.08 and CPU time a face.

Scored on the fixed training tenth (``tenth``: the held-out selection images, where choices
are made) or, to report only, on a measured split (``validation``: the HELEN test images).
``benchmarks/compare_weights.py`` prints these; notebook 09 shows what each change to the
shipped landmarker bought.
"""
import time

import numpy as np
import pandas as pd

from .data import split_samples
from .landmarker import REFRAME_KEY, Landmarker, predict_split_from_files
from .metrics import failure_rate, nme
from .pipeline import model_selection
from .weights_io import read_weights_manifest

#: the columns of :func:`compare_frame`
COLUMNS = ("weights", "set", "stages", "flip", "reframe", "runtime", "n", "NME %", "FR@0.08 %", "CPU ms a face")


def samples_of(data_dir, which, limit=None):
    """``(split, samples)``: the training tenth, or a whole split (None: all its samples);
    ``limit``: only the first samples."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if which == "tenth":
        samples = split_samples(data_dir, "train")
        mask = model_selection(np.array([s.id for s in samples]))
        samples = [s for s, chosen in zip(samples, mask) if chosen]
        return "train", samples[:limit]
    return which, (split_samples(data_dir, which)[:limit] if limit is not None else None)


def score(landmarker, data_dir, which="tenth", limit=None):
    """One landmarker on one set: ``{"n", "NME %", "FR@0.08 %", "CPU ms a face"}`` (68 points;
    CPU time of this process, all threads: reading, detecting and landmarking one photo at a
    time, as notebook 08 measures; after one untimed photo, since first calls compile)."""
    split, samples = samples_of(data_dir, which, limit)
    first = samples[:1] if samples is not None else split_samples(data_dir, split)[:1]
    predict_split_from_files(landmarker, data_dir, split, samples=first)  # first calls compile
    start = time.process_time()
    pred = predict_split_from_files(landmarker, data_dir, split, samples=samples)
    cpu = time.process_time() - start
    errors = nme(pred.points, pred.gt)
    return {"n": len(errors), "NME %": 100 * errors.mean(),
            "FR@0.08 %": 100 * failure_rate(errors), "CPU ms a face": 1000 * cpu / len(errors)}


def compare_frame(folders, data_dir, sets=("tenth",), stages=(None,), runtimes=("keras",),
                  labels=None, limit=None, log=None, flips=(False,), reframes=(None,)):
    """Every folder x set x stages x flip x reframe x runtime (``fkd predict --stages / --flip
    / --reframe / --runtime``; reframe None: the folder's default) scored with
    :func:`score`, one row each (:data:`COLUMNS`). A setting that resolves to one already
    measured for that folder (``auto`` where there is no int8 model, the default reframe of
    a folder without its calibration) is not run twice; a reframe the folder cannot do (one
    exported before ``--reframe``) is left out, said in ``log``. ``labels``: the folders'
    names in the table (default: their paths)."""
    labels = list(labels or [str(f) for f in folders])
    if len(labels) != len(folders):
        raise ValueError(f"{len(labels)} labels for {len(folders)} weights folders")
    settings = []  # (label, landmarker), each model set loaded once for every set
    for folder, label in zip(folders, labels):
        done = set()
        calibrated = REFRAME_KEY in read_weights_manifest(folder)
        for count, flip, reframe, runtime in [(k, f, r, t) for k in stages for f in flips
                                              for r in reframes for t in runtimes]:
            if reframe and not calibrated:
                if log:
                    log(f"left out --reframe {reframe} for {label}: its manifest has no "
                        f"{REFRAME_KEY} (exported before --reframe)")
                continue
            landmarker = Landmarker(folder, "cascade", stages=count, runtime=runtime,
                                    flip=flip, reframe=reframe)
            key = (landmarker.stages, landmarker.flip, landmarker.reframe, landmarker.runtime)
            if key not in done:
                done.add(key)
                settings.append((label, landmarker))
    rows = []
    for which in sets:
        for label, landmarker in settings:
            rows.append({"weights": label, "set": which, "stages": landmarker.stages,
                         "flip": landmarker.flip, "reframe": landmarker.reframe,
                         "runtime": landmarker.runtime, **score(landmarker, data_dir, which, limit)})
            if log:
                log(row_text(rows[-1]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def row_text(row):
    """One row of :func:`compare_frame` as a line of text."""
    return (f"{row['set']:10s} n={row['n']} NME {row['NME %']:.3f} % FR@0.08 "
            f"{row['FR@0.08 %']:.2f} % {row['CPU ms a face']:.1f} CPU ms a face  stages "
            f"{row['stages']}{' --flip' if row['flip'] else ''} --reframe {row['reframe']}, "
            f"{row['runtime']}: "
            f"{row['weights']}")


def training_records(manifest):
    """How each model a weights folder took from a longer training run was trained (the
    manifest's ``replaced`` records, written by ``python -m fkd_utils.release``), as a table."""
    rows = [{"model": name, "profile": rec.get("profile"),
             "epochs": (f"{rec['epochs_run']}{' so far' if rec.get('still_training') else ''}"
                        if "epochs_run" in rec else None),
             "training (min)": round(rec["train_time_s"] / 60) if "train_time_s" in rec else None,
             "best selection loss": rec.get("best_val_loss")}
            for name, rec in (manifest.get("replaced") or {}).items()]
    return pd.DataFrame(rows, columns=["model", "profile", "epochs", "training (min)",
                                       "best selection loss"])


#: the committed comparison notebook 09 shows, made by runs of
#: ``benchmarks/compare_weights.py`` on 2 CPU cores, its rows concatenated (a folder measured
#: by two runs keeps its first run's rows): ``(weights folders, what they are, command)``
CHANGES_FILE = "real_shipped_changes.csv"
_COMPARE = ("python benchmarks/compare_weights.py {folders} --labels {labels} --data-dir "
            "../shared/data/300w --sets tenth validation --stages {stages} --runtime keras auto")
CHANGES_RUNS = (
    ("OLD_WEIGHTS: git archive 5aea4bd fkd_utils/weights/real, int8 models added by fkd "
     "quantize; RELEASE: git archive 160e26d fkd_utils/weights/real",
     _COMPARE.format(folders="OLD_WEIGHTS RELEASE", stages="1 2 3",
                     labels="'cpu profile (before)' 'release models, face check'")),
    ("MIRROR: RELEASE with the mirror biases in its manifest (make ship-weights, int8 "
     "calibrated again)",
     _COMPARE.format(folders="RELEASE MIRROR", stages="2 3",
                     labels="'release models, face check' 'mirror bias corrected'")),
    ("SHAPE: git archive 670507b fkd_utils/weights/real (MIRROR with the shape correction)",
     _COMPARE.format(folders="SHAPE", stages="1 2 3",
                     labels="'mirror bias and shape correction'")),
    ("JAW: git archive 81842d3 fkd_utils/weights/real (SHAPE with the jaw ResNet)",
     _COMPARE.format(folders="JAW", stages="1 2 3", labels="'jaw ResNet'")),
    ("EYES: git archive ac72514 fkd_utils/weights/real (JAW with both eye ResNets trained 12 "
     "epochs further on every photo and its mirror image, and the mirrored reads' biases)",
     _COMPARE.format(folders="EYES", stages="1 2 3", labels="'mirrored eye training'")
     + " --flip"),
    ("the shipped weights: EYES with the box calibration for re-framing (make ship-weights, "
     "int8 calibrated again), with the detector before its filling pass (code at 86d2728); "
     "not re-framed, re-framed once and twice (run as --reframe 1 2, then --reframe 0)",
     _COMPARE.format(folders="fkd_utils/weights/real", stages="2 3",
                     labels="'re-framed from stage 1'") + " --flip --reframe 0 1 2"),
    ("the shipped weights with the detector's filling pass (detect.FILLING_CHECK), re-framed "
     "once (the default), then the most accurate setting (run with --stages 3 --runtime keras "
     "--flip --reframe 2)",
     _COMPARE.format(folders="fkd_utils/weights/real", stages="2 3",
                     labels="'faces filling the photo (shipped)'") + " --flip"),
)
SET_NAMES = {"tenth": "training tenth", "validation": "HELEN test"}


def reference_changes():
    """The committed comparison of the shipped weights before and after their changes
    (:data:`CHANGES_FILE` in the reference tables), sets named, or None if it is missing."""
    from .report import reference_dir
    path = reference_dir() / CHANGES_FILE
    if not path.is_file():
        print(f"no reference table {CHANGES_FILE} in {reference_dir()}")
        return None
    print("reference, real faces (300-W), made on 2 CPU cores by:")
    for folders, command in CHANGES_RUNS:
        print(f"  `{command}` ({folders})")
    table = pd.read_csv(path)
    table["set"] = table["set"].map(SET_NAMES).fillna(table["set"])
    table["flip"] = table["flip"].astype(bool)
    return table.round({"NME %": 3, "FR@0.08 %": 2, "CPU ms a face": 1})
