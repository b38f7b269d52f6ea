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
from pathlib import Path

from . import paths
from .devices import installed_versions
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
        raise ValueError(f"no notebooks in {NOTEBOOKS_DIR}: the installed package carries the "
                         "landmarker, not the notebooks; 'fkd reproduce' runs in a clone of the "
                         "project's git repository (clone it, then 'make reproduce' there)")
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
    return installed_versions(PACKAGES)


def collect_results(profile, data_dir):
    """Evaluate every ``results/<profile>/<approach>_<split>.npz`` against its ground truth.

    Returns ``{approach: {split: metrics.evaluate(...)}}``.
    """
    from .data import ground_truth
    from .metrics import evaluate
    from .pipeline import load_predictions, prediction_info
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
        info = prediction_info(path)
        if info:  # the setting it ran with (stages, runtime), for the tables' row names
            results[approach][split]["info"] = info
    return results


class NeedsConfirmation(ValueError):
    """The full profile would train for hours on the CPU and nobody said ``--yes``."""


#: Profiles whose notebooks are meant for an accelerator (``fkd reproduce`` asks first on a CPU).
ACCELERATOR_PROFILES = ("full",)


def cpu_time_estimate(profile="full", reference="cpu"):
    """Expected CPU hours to train ``profile``'s models, from the training speeds recorded in
    ``models/<reference>/*.json`` (models trained on this machine's CPU), or None if none are.

    Rule: a model's time scales with its images, epochs and pixels per image. Speed = seconds
    per (image x epoch x pixel) = train_time_s / (fit_images x epochs_run x input_size^2), the
    model's own where ``reference`` trained a model of that name, else pooled over every
    recorded model (ablation variants too). A model of ``profile`` then takes speed x
    fit_images (the recorded model's, else the recorded face models', x region_copies for a
    region model) x epochs x its input_size^2. ``at_most`` runs every model to its budget
    (epochs + annealing epochs); ``expected`` stops a model after the fraction of its budget
    its namesake ran (early stopping), the whole budget when none did. Notebooks 06 and 09's
    ablations come on top.
    """
    from .pipeline import model_specs
    target, ref = get_profile(profile), get_profile(reference)
    records = {}
    for path in paths.model_manifests(ref.name):
        m = json.loads(path.read_text())
        if not all(m.get(k) for k in ("train_time_s", "epochs_run", "fit_images", "input_size")):
            continue
        if any(k in str(d).lower() for d in m.get("devices", []) for k in ("gpu", "tpu", "cuda")):
            continue  # trained on an accelerator: says nothing about this CPU
        records[path.stem] = m
    if not records:
        return None
    work = lambda m: m["fit_images"] * m["epochs_run"] * m["input_size"] ** 2
    pooled = sum(m["train_time_s"] for m in records.values()) / sum(map(work, records.values()))
    faces = max((m["fit_images"] for m in records.values()
                 if m.get("target") in ("points", "boxes")), default=None)
    expected = at_most = 0.0
    for name, spec in model_specs(target).items():
        own = records.get(name)
        images = own["fit_images"] if own else faces and (
            faces * (target.region_copies if spec.target.startswith("region:") else 1)
            * (2 if spec.learns_from_mirror_images else 1))
        if not images:
            continue
        budget = target.epochs + spec.anneal_epochs(target.epochs)
        seconds = (own["train_time_s"] / work(own) if own else pooled) * images * budget \
            * spec.input_size ** 2
        at_most += seconds
        expected += seconds * (min(own["epochs_run"] / (ref.epochs + spec.anneal_epochs(ref.epochs)),
                                   1.0) if own else 1.0)
    return {"expected_h": expected / 3600, "at_most_h": at_most / 3600, "reference": ref.name,
            "recorded": sorted(records)}


def accelerator_warning(profile, found):
    """What ``fkd reproduce`` says before training the full profile without an accelerator."""
    from .devices import count_devices
    p = get_profile(profile)
    where = count_devices(found["devices"])
    text = (f"profile {p.name} is the paper's setting for a GPU ({p.image_size} px, up to "
            f"{p.epochs} epochs), but Keras on {found['keras_backend']} sees no accelerator here "
            f"({where}).")
    estimate = cpu_time_estimate(p.name)
    if estimate:
        text += (f" At this machine's CPU speed (the {estimate['reference']} profile's "
                 f"{len(estimate['recorded'])} recorded trainings, scaled by images, pixels and "
                 f"epochs) its models alone need about {estimate['expected_h']:.0f} h of "
                 f"training (at most {estimate['at_most_h']:.0f} h), ablations not counted.")
    else:
        text += (" No CPU training speed is recorded here (train the cpu profile first for an "
                 "estimate); expect many hours.")
    if found.get("hint"):
        text += f" Note: {found['hint']}."
    return text + " Pass --yes to train on the CPU anyway."


def confirm_devices(profile, found, yes=False, ask=None):
    """Refuse (:class:`NeedsConfirmation`) an accelerator profile on a machine without one,
    unless ``yes`` or, at a terminal, the user answers y."""
    if get_profile(profile).name not in ACCELERATOR_PROFILES or found["accelerators"] or yes:
        return
    message = accelerator_warning(profile, found)
    if ask is None and sys.stdin.isatty():
        ask = input
    if ask is not None and ask(message + " Train on the CPU now? [y/N] ").strip().lower() in ("y", "yes"):
        return
    raise NeedsConfirmation(message)


def reproduce(profile="quick", data_dir="", only=None, force=False, seed=42, log=print,
              extra_parameters=None, yes=False, ask=None):
    """Run the notebooks for a profile; write results.json and a manifest. Returns the manifest.

    The devices are listed first, from a fresh process (the notebooks' kernels then have the
    accelerator to themselves); an accelerator profile on a CPU-only machine needs ``yes``.
    """
    from .data import data_dir_for
    from .devices import describe, query
    from .preprocess import data_fingerprint
    selected = notebooks(only)  # before anything is generated: an installed copy has none
    p = get_profile(profile)
    found = query()
    log(describe(found))
    confirm_devices(p, found, yes, ask)
    resolved = data_dir_for(data_dir, p)
    data_hash = data_fingerprint(resolved)
    parameters = {"profile": p.name, "data_dir": str(resolved), "seed": seed,
                  **(extra_parameters or {})}
    out_dir = paths.runs_dir(p.name)
    out_dir.mkdir(parents=True, exist_ok=True)
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
                "seed": seed, "keras_backend": found["keras_backend"],
                "devices": found["devices"], "accelerators": found["accelerators"],
                "python": sys.version.split()[0], "platform": platform.platform(),
                "packages": package_versions(), "source_hash": source_hash(),
                "notebooks": records, "wall_time_s": round(time.time() - start, 1)}
    (paths.results_dir(p.name) / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(f"done in {manifest['wall_time_s']:.0f} s; results in {results_path}")
    return manifest
