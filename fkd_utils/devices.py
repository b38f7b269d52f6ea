"""Which Keras backend and which devices train here (``fkd info``; each notebook's setup).

:func:`choose_backend` runs when ``fkd_utils`` is imported, before Keras is: on a machine with
an NVIDIA GPU and the ``gpu`` extra (JAX's CUDA plugin) it sets ``KERAS_BACKEND=jax``, unless
the user chose a backend (the variable, or ``~/.keras/keras.json``). It looks at files only:
importing JAX there would cost every ``import fkd_utils`` a second, and asking JAX for its
devices would take most of the GPU's memory in whichever process asked first (JAX preallocates).

:func:`info` asks the backend itself (``jax.devices()``, ``tf.config.list_logical_devices()``)
which devices Keras trains on; :func:`query` does the same in a fresh process, so that a
parent such as ``fkd reproduce`` never holds the accelerator its notebooks' kernels need.
"""
import importlib.util
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: The modules of JAX's CUDA plugins (the ``gpu`` extra installs the CUDA 12 one).
JAX_GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin")
ACCELERATOR_KINDS = ("gpu", "tpu")
VERSIONED = ("fkd", "keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "jax-cuda12-plugin",
             "jax-cuda13-plugin", "torch", "numpy")


def nvidia_gpu_present():
    """An NVIDIA driver exposes a GPU (device files; no library is loaded)."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or any(Path("/proc/driver/nvidia/gpus").glob("*"))


def jax_gpu_plugin_installed():
    return any(importlib.util.find_spec(name) is not None for name in JAX_GPU_PLUGINS)


def _keras_config_backend():
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend")
    except (OSError, ValueError):
        return None


def choose_backend(environ=None):
    """Set ``KERAS_BACKEND=jax`` when nobody chose a backend, Keras is not imported yet, JAX's
    CUDA plugin is installed and an NVIDIA GPU is present. Returns the backend set, or None."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND") or "keras" in sys.modules or _keras_config_backend():
        return None
    if not (jax_gpu_plugin_installed() and nvidia_gpu_present()):
        return None
    environ["KERAS_BACKEND"] = "jax"
    return "jax"


def backend_devices(backend):
    """``[{"kind": "gpu"|"tpu"|"cpu", "name": ..., "id": ...}]``: what the backend computes on
    (JAX: its default platform's devices, the ones Keras trains on; TensorFlow: its logical
    devices)."""
    if backend == "jax":
        import jax
        return [{"kind": d.platform if d.platform in ACCELERATOR_KINDS else "cpu",
                 "name": d.device_kind, "id": f"{d.platform}:{d.id}"} for d in jax.devices()]
    if backend == "tensorflow":
        import tensorflow as tf
        found = []
        for d in tf.config.list_logical_devices():
            kind = d.device_type.lower()
            found.append({"kind": kind if kind in ACCELERATOR_KINDS else "cpu",
                          "name": d.device_type, "id": d.name})
        return found
    if backend == "torch":
        import torch
        gpus = [{"kind": "gpu", "name": torch.cuda.get_device_name(i), "id": f"cuda:{i}"}
                for i in range(torch.cuda.device_count())]
        return gpus or [{"kind": "cpu", "name": "cpu", "id": "cpu"}]
    return [{"kind": "cpu", "name": backend, "id": "cpu"}]


def installed_versions(names):
    """``{distribution: version}`` for those of ``names`` that are installed."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def versions():
    return {"python": platform.python_version(), **installed_versions(VERSIONED)}


def info():
    """Backend, versions and devices of this process (imports Keras and its backend)."""
    import keras
    backend = keras.backend.backend()
    devices = backend_devices(backend)
    return {"keras_backend": backend, "devices": devices,
            "accelerators": sum(d["kind"] in ACCELERATOR_KINDS for d in devices),
            "versions": versions(), "platform": platform.platform(),
            "hint": backend_hint(backend)}


def backend_hint(backend):
    """Why a GPU here is not used, when that is so (else "")."""
    if backend != "jax" and nvidia_gpu_present() and jax_gpu_plugin_installed():
        return ("an NVIDIA GPU is present but Keras runs on " + backend + ": set KERAS_BACKEND=jax "
                "(before starting Jupyter, or before importing keras) to train on it")
    if backend == "jax" and nvidia_gpu_present() and not jax_gpu_plugin_installed():
        return "an NVIDIA GPU is present but JAX has no CUDA plugin: pip install -e '.[gpu]'"
    return ""


def query(env=None, timeout=300):
    """:func:`info` from a fresh Python process (same interpreter, same environment)."""
    out = subprocess.run([sys.executable, "-m", "fkd_utils.devices"], capture_output=True,
                         text=True, env=env, timeout=timeout, check=False)
    if out.returncode:
        raise RuntimeError(f"could not list the devices: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def count_devices(devices):
    """``"2 x cpu"``, ``"1 x gpu (NVIDIA H200)"``: the devices grouped by kind and model."""
    groups = {}
    for d in devices:
        groups.setdefault(f"{d['kind']} ({d['name']})" if d["kind"] != "cpu" else "cpu", []).append(d)
    return ", ".join(f"{len(v)} x {k}" for k, v in groups.items())


def describe(found):
    """One line: backend, device count and names, versions."""
    devices = count_devices(found["devices"])
    v = found["versions"]
    libs = ", ".join(f"{k} {v[k]}" for k in ("keras", "tensorflow-cpu", "tensorflow", "jax") if k in v)
    line = f"Keras on {found['keras_backend']}: {devices} | {libs}, python {v['python']}"
    if not found["accelerators"]:
        line += " | no accelerator: training runs on the CPU"
    return line + (f" | {found['hint']}" if found.get("hint") else "")


def print_summary():
    """The one line each notebook's setup prints."""
    print(describe(info()))


if __name__ == "__main__":
    print(json.dumps(info()))
