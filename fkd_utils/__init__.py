"""fkd: facial keypoints detection with ResNets on 300-W (Dei Rossi & Corrado), as a package
that the numbered notebooks in ``notebooks/`` walk through.
"""
from . import quiet  # noqa: F401 - first: TensorFlow's start-up lines stay off stderr

from .devices import choose_backend  # noqa: E402

# Keras on JAX when the gpu extra and an NVIDIA GPU are here and nobody chose a backend; it
# must run before keras is imported (see fkd_utils.devices).
choose_backend()

__version__ = "0.1.0"


def predict(image, boxes=None, approach="cascade", weights_dir=None, face_check=True):
    """68 landmarks on every face of an image (path or RGB array); see :mod:`fkd_utils.landmarker`."""
    from .landmarker import predict as _predict
    return _predict(image, boxes, approach, weights_dir, face_check)
