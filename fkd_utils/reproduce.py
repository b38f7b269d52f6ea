"""Run every notebook with papermill, in order, and collect the results (``fkd reproduce``).

Executed copies go to ``runs/<profile>/`` (never over the sources). A notebook already executed
with the same parameters, sources and data is skipped unless ``force``. A failing notebook
stops the run with its name and the failing cell's error. At the end the predictions in
``results/<profile>/`` are evaluated into ``results.json`` and a run manifest is written.
"""
import hashlib
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from . import paths
from .profiles import get_profile

NOTEBOOKS_DIR = paths.PROJECT_ROOT / "notebooks"
#: Notebooks that only train (ablations); the ``real`` profile evaluates shipped weights only.
TRAINING_ONLY = ("06", "09")
PACKAGES = ("numpy", "scipy", "scikit-image", "matplotlib", "keras", "tensorflow-cpu",
            "tensorflow", "jax", "papermill", "ipywidgets")


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it and quotes the failing cell's error."""


def notebooks(only=None):
    """The numbered notebooks, in order; ``only`` keeps those whose number is listed."""
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ValueError(f"no notebooks in {NOTEBOOKS_DIR}: run from a clone of the project "
                         "(pip install -e .)")
    if only:
        wanted = {n.zfill(2) for n in only}
        unknown = wanted - {p.name[:2] for p in found}
        if unknown:
            raise ValueError(f"no notebook numbered {', '.join(sorted(unknown))} in {NOTEBOOKS_DIR}")
        found = [p for p in found if p.name[:2] in wanted]
    return found


def source_hash():
    """Hash of the package sources: a changed function reruns the notebooks."""
    digest = hashlib.sha256()
    for path in sorted(paths.PACKAGE_DIR.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_key(notebook, parameters, data_hash):
    blob = json.dumps({"nb": hashlib.sha256(notebook.read_bytes()).hexdigest(),
                       "params": parameters, "data": data_hash, "src": source_hash()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _failure_message(notebook, err):
    ename = getattr(err, "ename", type(err).__name__)
    evalue = getattr(err, "evalue", str(err))
    cell = getattr(err, "exec_count", None)
    where = f" (cell {cell})" if cell else ""
    return f"{notebook.name} failed{where}: {ename}: {evalue}"


def run_notebook(notebook, out_dir, parameters, data_hash, force=False, log=print,
                 cell_timeout=None):
    """Execute one notebook unless an up-to-date executed copy exists; returns its record."""
    import papermill as pm
    out = Path(out_dir) / notebook.name
    out.parent.mkdir(parents=True, exist_ok=True)
    meta_path = out.with_suffix(".run.json")
    key = _run_key(notebook, parameters, data_hash)
    if not force and out.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key:
            log(f"  {notebook.name}: up to date, skipped (use --force to rerun)")
            return {**meta, "skipped": True}
    log(f"  {notebook.name}: running ...")
    meta_path.unlink(missing_ok=True)  # a failed rerun must not look up to date next time
    start = time.time()
    try:
        pm.execute_notebook(str(notebook), str(out), parameters=parameters, kernel_name="python3",
                            cwd=str(notebook.parent), progress_bar=False, log_output=False,
                            execution_timeout=cell_timeout)
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's error
        raise NotebookFailed(_failure_message(notebook, err)) from None
    record = {"notebook": notebook.name, "key": key, "wall_time_s": round(time.time() - start, 1),
              "parameters": parameters, "skipped": False}
    meta_path.write_text(json.dumps(record, indent=1))
    log(f"  {notebook.name}: done in {record['wall_time_s']:.0f} s")
    return record


#: What an executed notebook must not show: TensorFlow's start-up lines, tf.function
#: retracing warnings, and paths echoed by a cell's last expression.
NOISE = {"TensorFlow log line": ("oneDNN custom operations", "absl::InitializeLog",
                                 "cpu_feature_guard"),
         "retracing warning": ("triggered tf.function retracing",),
         "path echo": ("PosixPath(",)}


def output_problems(executed):
    """``(cell index, problem, excerpt)`` for every noisy output of an executed notebook
    (a path or a notebook node); empty when its outputs are clean."""
    import nbformat
    nb = nbformat.read(str(executed), 4) if isinstance(executed, (str, Path)) else executed
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
            for problem, needles in NOISE.items():
                hit = next((n for n in needles if n in text), None)
                if hit:
                    at = text.index(hit)
                    found.append((index, problem, text[max(0, at - 40): at + 80]))
    return found


def package_versions():
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def collect_results(profile, data_dir):
    """Evaluate every ``results/<profile>/<approach>_<split>.npz`` against its ground truth.

    Returns ``{approach: {split: metrics.evaluate(...)}}``.
    """
    from .data import ground_truth
    from .metrics import evaluate
    from .pipeline import load_predictions
    results, gt_cache = {}, {}
    for path in sorted(paths.results_dir(profile).glob("*_*.npz")):
        approach, split = path.stem.rsplit("_", 1)
        if split not in ("train", "validation", "test"):
            continue
        if split not in gt_cache:
            gt_cache[split] = ground_truth(data_dir, split)
        ids, subsets, gt = gt_cache[split]
        _, points = load_predictions(path, ids=list(ids))
        results.setdefault(approach, {})[split] = evaluate(points, gt, subsets)
    return results


def reproduce(profile="quick", data_dir="", only=None, force=False, seed=42, log=print,
              extra_parameters=None):
    """Run the notebooks for a profile; write results.json and a manifest. Returns the manifest."""
    import keras
    from .data import data_dir_for
    from .preprocess import data_fingerprint
    p = get_profile(profile)
    resolved = data_dir_for(data_dir, p)
    data_hash = data_fingerprint(resolved)
    parameters = {"profile": p.name, "data_dir": str(resolved), "seed": seed,
                  **(extra_parameters or {})}
    out_dir = paths.runs_dir(p.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = notebooks(only)
    if p.name == "real":
        skipped = [nb.name for nb in selected if nb.name[:2] in TRAINING_ONLY]
        selected = [nb for nb in selected if nb.name[:2] not in TRAINING_ONLY]
        if skipped:
            log(f"profile real evaluates shipped weights; not running {', '.join(skipped)} (they train)")
    log(f"fkd reproduce: profile {p.name}, data {resolved}, {len(selected)} notebooks -> {out_dir}")
    records, start = [], time.time()
    for i, nb in enumerate(selected, 1):
        log(f"[{i}/{len(selected)}] {nb.name}")
        # a hung cell fails the quick run instead of blocking CI; long profiles train for hours
        timeout = 900 if p.name == "quick" else None
        records.append(run_notebook(nb, out_dir, parameters, data_hash, force, log, timeout))
    results = collect_results(p.name, resolved)
    results_path = paths.results_dir(p.name) / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1))
    manifest = {"profile": p.to_dict(), "data_dir": str(resolved), "data_fingerprint": data_hash,
                "seed": seed, "keras_backend": keras.backend.backend(),
                "python": sys.version.split()[0], "platform": platform.platform(),
                "packages": package_versions(), "source_hash": source_hash(),
                "notebooks": records, "wall_time_s": round(time.time() - start, 1)}
    (paths.results_dir(p.name) / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"done in {manifest['wall_time_s']:.0f} s; results in {results_path}")
    return manifest
