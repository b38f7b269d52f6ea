"""fkd: facial keypoints detection with ResNets on 300-W (Dei Rossi & Corrado), as a package
that the numbered notebooks in ``notebooks/`` walk through.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

__version__ = "0.1.0"
