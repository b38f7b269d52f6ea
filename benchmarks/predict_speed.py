"""Faces per second of ``fkd predict`` end to end on 2 CPU cores: decode, detect, crop, predict.

    python benchmarks/predict_speed.py [IMAGES_DIR] [--weights DIR] [--approach cascade]
                                       [--detector hog haar] [--limit 200] [--batch 1 32]
                                       [--stages 1 2 3] [--flip] [--reframe 0 1 2]
                                       [--min-face 0.2 0.12]
                                       [--runtime keras onnx] [--repeats 3]

Defaults: the shipped real-face weights and ``../shared/data/300w/helen/testset``. Prints the
CPU (model, usable cores, the instruction-set flags that decide bfloat16 speed) and the load
average, then one line per setting and runtime, e.g.
``cascade hog batch 1 keras: 200 images, 199 faces, 23.4 faces/s (best of 3: ...)``. The
runtimes run interleaved, ``--repeats`` rounds each, so a load from other processes on the
machine hits both alike; the best round is the one least disturbed. CPU milliseconds per face
(this process's threads, all cores) are printed too: on a shared machine they change less
than faces/s.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fkd_utils.landmarker import IMAGE_SUFFIXES, Landmarker, predict_batches  # noqa: E402


def run(files, landmarker, batch=1):
    """Decode, detect, crop and predict every file as ``fkd predict`` does: ``batch`` images
    per batched model pass (1: one photo at a time), the next batch decoded and detected
    while the models work."""
    start, cpu = time.perf_counter(), time.process_time()
    faces = sum(len(found[0]) for *_, found in predict_batches([(p, p.stem) for p in files],
                                                               landmarker, batch)
                if not isinstance(found, Exception))  # found: (faces, rejected detections)
    return faces, time.perf_counter() - start, time.process_time() - cpu


#: CPU flags that decide how fast the models run (bfloat16 matrix units, vector widths)
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_description():
    """``model name, N usable cores, flags: ...`` from /proc/cpuinfo (the platform elsewhere)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    present = [f for f in SPEED_FLAGS if f in flags]
    return f"{model}, {cores} usable cores, flags: {' '.join(present) or 'none of ' + ' '.join(SPEED_FLAGS)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="?",
                        default=str(Path(__file__).resolve().parents[2] / "shared/data/300w/helen/testset"))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--approach", nargs="+", default=["cascade", "end-to-end"])
    parser.add_argument("--detector", nargs="+", default=["hog", "haar"])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 32],
                        help="images per batched model pass (1: one photo at a time)")
    parser.add_argument("--stages", nargs="+", type=int, default=[None],
                        help="cascade: how many stages to run (fkd predict --stages; default: its default)")
    parser.add_argument("--flip", action="store_true",
                        help="cascade: also time every stage count with fkd predict --flip")
    parser.add_argument("--reframe", nargs="+", type=int, default=[None],
                        help="cascade: fkd predict --reframe values to time (default: the "
                             "folder's)")
    parser.add_argument("--min-face", nargs="+", type=float, default=[None],
                        help="the detector's smallest face, fraction of the photo's side "
                             "(fkd predict --min-face; default: the detector's)")
    parser.add_argument("--runtime", nargs="+", default=["keras", "onnx"],
                        help="model runtimes to compare (fkd predict --runtime), interleaved")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per runtime and setting")
    args = parser.parse_args(argv)
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[: args.limit]
    print(f"CPU: {cpu_description()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    flips = (False, True) if args.flip else (False,)
    for approach, stages, flip, reframe in [
            (a, k, f, n) for a in args.approach
            for k in (args.stages if a == "cascade" else [None])
            for f in (flips if a == "cascade" else (False,))
            for n in (args.reframe if a == "cascade" else [None])]:
        try:
            landmarkers = {r: Landmarker(args.weights, approach, stages=stages, runtime=r,
                                         flip=flip, reframe=reframe) for r in args.runtime}
        except Exception as err:  # a weights folder without this approach's models
            print(f"{approach}: skipped ({err})")
            continue
        if stages:
            approach = f"{approach} ({stages} stage{'s' if stages > 1 else ''})"
        approach += " --flip" if flip else ""
        if approach.startswith("cascade"):
            approach += f" --reframe {next(iter(landmarkers.values())).reframe}"
        for backend, min_face in [(b, m) for b in args.detector for m in args.min_face]:
            detector = backend + (f" (min face {min_face})" if min_face else "")
            for batch in args.batch:
                rates, cpu_ms = {r: [] for r in landmarkers}, {r: [] for r in landmarkers}
                for landmarker in landmarkers.values():
                    landmarker.set_detector(backend, min_face)
                    run(files[:batch + 2], landmarker, batch)  # warm-up: first calls compile
                for _ in range(args.repeats):
                    for runtime, landmarker in landmarkers.items():
                        faces, seconds, cpu_seconds = run(files, landmarker, batch)
                        rates[runtime].append(faces / seconds)
                        cpu_ms[runtime].append(1000 * cpu_seconds / max(faces, 1))
                for runtime, got in rates.items():
                    print(f"{approach} {detector} batch {batch} {runtime}: {len(files)} images, "
                          f"{faces} faces, {max(got):.1f} faces/s (best of {len(got)}: "
                          f"{' '.join(f'{r:.1f}' for r in got)}), {min(cpu_ms[runtime]):.1f} "
                          "CPU ms/face (all threads; less sensitive to other processes)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
