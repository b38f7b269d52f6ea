"""TensorFlow's start-up lines kept off stderr; imported first by ``fkd_utils/__init__.py``,
before anything imports TensorFlow (Keras' default backend).

``TF_CPP_MIN_LOG_LEVEL`` hides TensorFlow's C++ info and warnings once it runs, but TensorFlow
2.2x prints its oneDNN notice through absl before that setting is read ("All log messages before
absl::InitializeLog() ..."), so the first ``import tensorflow`` runs with file descriptor 2 sent
to /dev/null: a Python error raised by the import still reaches the user (it is raised after
stderr is back). Set ``FKD_TF_LOGS=1`` to see everything.
"""
import contextlib
import importlib.abc
import logging
import os
import sys


@contextlib.contextmanager
def stderr_to_devnull():
    """Send file descriptor 2 (C and C++ writes, not only ``sys.stderr``) to /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with stderr_to_devnull():
            self.loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, and loads it with stderr silenced (once)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def silence_tensorflow():
    if os.environ.get("FKD_TF_LOGS"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # e.g. retracing notes
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


silence_tensorflow()
