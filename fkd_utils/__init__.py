"""fkd: facial keypoints detection with ResNets on 300-W (Dei Rossi & Corrado), as a package
that the numbered notebooks in ``notebooks/`` walk through.
"""
from . import quiet  # noqa: F401 - first: TensorFlow's start-up lines stay off stderr

__version__ = "0.1.0"


def predict(image, boxes=None, approach="cascade", weights_dir=None):
    """68 landmarks on every face of an image (path or RGB array); see :mod:`fkd_utils.landmarker`."""
    from .landmarker import predict as _predict
    return _predict(image, boxes, approach, weights_dir)
