"""Where the project keeps generated files (introduced in notebook 01).

Everything generated lives under the project root (the folder holding ``fkd_utils``), or under
``$FKD_HOME`` when set: ``data/`` (embedded default data, preprocessed caches), ``models/``,
``results/``, ``runs/`` and ``figures/``. None of it is in git.
"""
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def home():
    """The root under which generated files go."""
    return Path(os.environ.get("FKD_HOME", PROJECT_ROOT)).resolve()


def data_root():
    return home() / "data"


def processed_dir():
    return data_root() / "processed"


def models_dir(profile):
    return home() / "models" / profile


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
