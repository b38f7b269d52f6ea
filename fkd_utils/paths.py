"""Where the project keeps generated files (introduced in notebook 01).

Everything generated lives under one home: ``data/`` (embedded default data, preprocessed
caches), ``models/``, ``weights/`` (what ``fkd train`` exports), ``results/``, ``runs/`` and
``figures/``. The home is ``$FKD_HOME`` when set; else, in a clone of the project, the project
folder (none of it is in git); else (the package installed from a wheel) the user's data
folder from ``platformdirs`` (e.g. ``~/.local/share/fkd``), never inside site-packages.
"""
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def in_clone():
    """True when the package runs from a clone of the project (pyproject.toml beside it), not
    from an installed copy in site-packages."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir()


def home():
    """The root under which generated files go."""
    if os.environ.get("FKD_HOME"):
        return Path(os.environ["FKD_HOME"]).expanduser().resolve()
    if in_clone():
        return PROJECT_ROOT
    import platformdirs
    return Path(platformdirs.user_data_dir("fkd", appauthor=False)).resolve()


def data_root():
    return home() / "data"


def processed_dir():
    return data_root() / "processed"


def models_dir(profile):
    return home() / "models" / profile


def model_manifests(profile):
    """The model manifests (``*.json``) of a profile: one folder per data set trained on
    (``models/<profile>/<data>-<fingerprint>/``), plus any older flat ones."""
    folder = models_dir(profile)
    return sorted([*folder.glob("*.json"), *folder.glob("*/*.json")])


def results_dir(profile):
    return home() / "results" / profile


def runs_dir(profile):
    return home() / "runs" / profile


def figures_dir():
    return home() / "figures"


def shared_data_dir():
    """``../shared/data`` beside the project, where this workplace keeps real data (or None)."""
    path = PROJECT_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


def real_300w_dir():
    """The real 300-W copy at ``../shared/data/300w`` when present, else None."""
    shared = shared_data_dir()
    path = shared / "300w" if shared else None
    return path if path is not None and path.is_dir() else None
