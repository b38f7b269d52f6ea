"""The shipped real-face weights on real 300-W faces (HELEN test images): they must stay below
the NME measured when they were shipped (plus a margin). Skipped, saying why, where the real
copy or the weights are absent."""
import json

import numpy as np
import pytest

from fkd_utils import landmarker, pipeline
from fkd_utils.metrics import nme

SHIPPED = landmarker.shipped_weights_dir("real")
EVERY = 3  # a fixed third of the 330 images keeps this within CI's time


@pytest.fixture(scope="module")
def manifest():
    if not (SHIPPED / "manifest.json").is_file():
        pytest.skip(f"no shipped weights at {SHIPPED}")
    return json.loads((SHIPPED / "manifest.json").read_text())


def _subset(pred):
    keep = np.arange(0, len(pred.ids), EVERY)
    return pred.points[keep], pred.gt[keep]


@pytest.mark.parametrize("approach", ["cascade", "end_to_end", "region", "box"])
def test_shipped_model_on_helen_testset(real_300w, manifest, approach):
    needed = pipeline.APPROACH_MODELS[approach]
    if not all(m in manifest["models"] for m in needed):
        pytest.skip(f"the shipped weights do not include {approach}")
    measured = manifest["validation_metrics"][approach]["nme"]
    models = {n: landmarker.import_model(SHIPPED, n, manifest) for n in needed}
    pred = pipeline.run_approaches("real", real_300w, "validation", models, [approach])[approach]
    errors = nme(*_subset(pred))
    print(f"{approach}: NME {100 * errors.mean():.2f} % on every {EVERY}rd HELEN test image "
          f"(all 330 when shipped: {100 * measured:.2f} %)")
    assert errors.mean() < measured + 0.005
