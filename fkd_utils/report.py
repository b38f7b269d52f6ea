"""Accuracy tables from predictions (introduced in notebook 02).

One row per approach, points (68 / 51) and subset, with NME, AUC@0.08 and FR@0.08 in %.
"""
import pandas as pd

from .metrics import evaluate, nme

LABELS = {"mean_shape": "mean shape (baseline)", "end_to_end": "1. end-to-end",
          "region": "2. region-specific", "box": "3. region + box ResNet",
          "oracle": "oracle (GT regions, upper bound)", "cascade": "ours: cascade"}


def label(name):
    return LABELS.get(name, name)


def results_frame(predictions, points=(68, 51), subsets=True):
    """A DataFrame of metrics for ``{name: Prediction}`` (see :mod:`fkd_utils.pipeline`)."""
    rows = []
    for name, pred in predictions.items():
        report = evaluate(pred.points, pred.gt, pred.subsets if subsets else None)
        for pts in points:
            for subset, row in report[str(pts)].items():
                rows.append({"approach": label(name), "split": pred.split, "points": pts,
                             "subset": subset, "n": row["n"], "NME %": 100 * row["nme"],
                             "AUC@0.08 %": 100 * row["auc"], "FR@0.08 %": 100 * row["fr"]})
    return pd.DataFrame(rows).round(2)


def summary_frame(predictions, points=68):
    """The compact table: all images of a split, one row per approach."""
    frame = results_frame(predictions, (points,), subsets=False)
    return frame.drop(columns=["subset", "points"]).set_index("approach")


def errors_by_approach(predictions, points=68):
    """Per-image NME of each approach, for CED plots."""
    return {label(name): nme(pred.points, pred.gt, points) for name, pred in predictions.items()}
