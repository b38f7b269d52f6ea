"""Weights I/O, below both the evaluation pipeline and the photo landmarker: exported models
(architecture ``<name>.json`` + weights ``<name>.weights.npz``), their sha256 checksums and the
weights folder's ``manifest.json``, and where the shipped weights live.

Weights live in ``weights/<profile>/``: each model as its architecture (``<name>.json``) and its
weights (``<name>.weights.npz``, large arrays in float16 to keep the files small; they are
computed in float32), plus ``manifest.json`` (profile, input sizes, training data hash and
counts, validation metrics, the command, a sha256 per file, and the face detector's
calibration). The weights shipped in the package (``fkd_utils/weights/real/``) were trained on
300-W images, which are for research use only; the weights carry that restriction.
"""
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from . import paths
from .io import DataError
from .models import load_exported

FLOAT16_MIN_SIZE = 4096  # arrays this large are stored as float16; small ones keep float32
RESEARCH_NOTE = ("Trained on 300-W (iBUG) images, which are for research use only; these "
                 "weights carry the same restriction.")


def shipped_weights_dir(profile="real"):
    """The weights of a profile: ``real``'s ship inside the package (package data, read through
    ``importlib.resources``, so an installed wheel works offline); the others are what
    ``fkd train`` wrote to ``weights/<profile>`` under :func:`paths.home`."""
    if profile == "real":
        return Path(str(resources.files(__package__).joinpath("weights", "real")))
    return paths.home() / "weights" / profile


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_model(model, out_dir, name):
    """Write ``<name>.json`` and ``<name>.weights.npz``; returns the two paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arch = out_dir / f"{name}.json"
    arch.write_text(model.to_json())
    arrays = {f"w{i:03d}": (w.astype(np.float16) if w.size >= FLOAT16_MIN_SIZE else w)
              for i, w in enumerate(model.get_weights())}
    weights = out_dir / f"{name}.weights.npz"
    tmp = weights.with_name(weights.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, weights)
    return arch, weights


def import_model(weights_dir, name, manifest=None):
    """Rebuild an exported model in float32, checking the files against the manifest."""
    weights_dir = Path(weights_dir)
    arch, weights = weights_dir / f"{name}.json", weights_dir / f"{name}.weights.npz"
    for path in (arch, weights):
        if not path.is_file():
            raise DataError(f"{path}: missing from the weights folder")
        want = (manifest or {}).get("files", {}).get(path.name)
        if manifest is not None and not want:
            raise DataError(f"{path}: not listed in manifest.json's 'files' (no checksum to "
                            "check it against)")
        if want and want != sha256(path):
            raise DataError(f"{path}: sha256 does not match manifest.json (corrupt or replaced file)")
    return load_exported(arch, weights)


def read_weights_manifest(weights_dir):
    path = Path(weights_dir) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: no manifest; pass --weights DIR (Landmarker(weights_dir=DIR)) "
                        "naming a weights folder that 'fkd train' wrote")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a valid manifest ({type(err).__name__}: {err})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: not a valid manifest (a JSON object is expected)")
    for key in ("profile", "image_size", "models", "files"):
        if key not in manifest:
            raise DataError(f"{path}: manifest lacks '{key}'")
    return manifest
