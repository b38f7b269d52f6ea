"""Accuracy tables from predictions (introduced in notebook 02).

One row per approach, points (68 / 51) and subset, with NME, AUC@0.08 and FR@0.08 in %.
"""
import pandas as pd

from .metrics import evaluate, nme

LABELS = {"mean_shape": "mean shape (baseline)", "end_to_end": "1. end-to-end",
          "region": "2. region-specific", "box": "3. region + box ResNet",
          "oracle": "oracle (GT regions, upper bound)", "cascade": "ours: cascade (3 stages)",
          "cascade_predict": "ours: cascade as fkd predict runs it (stage 1 + regions)",
          "cascade_own_detector": "ours: fkd predict, its own detector (stage 1 + regions)",
          "cascade_full_own_detector": "ours: cascade (3 stages), fkd predict's own detector",
          "dlib_300w_boxes": "dlib shape predictor, 300-W boxes",
          "dlib_own_detector": "dlib shape predictor, its own detector"}
ORDER = tuple(LABELS)


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


def markdown_table(results, split, points=68):
    """A Markdown table (one row per approach) from ``results.json`` content."""
    lines = ["| approach | images | NME % | AUC@0.08 % | FR@0.08 % |", "|---|---|---|---|---|"]
    names = sorted((n for n in results if split in results[n]),
                   key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    for name in names:
        row = results[name][split][str(points)]["all"]
        lines.append(f"| {label(name)} | {row['n']} | {100 * row['nme']:.2f} | "
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
