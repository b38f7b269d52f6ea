"""The full profile on a GPU, resumable across short calls (issue 15, item 4).

    python benchmarks/full_on_gpu.py run    --state gpu-run --data-dir ../shared/data/300w
                                            [--profile full] [--only 02,03] [--budget-s 540]
    python benchmarks/full_on_gpu.py pack   --state gpu-run --out "$OUT"
    python benchmarks/full_on_gpu.py unpack --state gpu-run FOLDER_WITH_PARTS
    python benchmarks/full_on_gpu.py report --state gpu-run --readme README.md [--compare cpu]

``run`` runs ``fkd reproduce --profile full --data-dir DIR`` through papermill with
``FKD_HOME=<state>/home`` and stops it after ``--budget-s`` seconds (exit code 3: call again to
resume). Resuming costs at most one epoch: trained models are reused, a model stopped mid-fit
restarts from its BackupAndRestore checkpoint, finished notebooks are skipped as up to date.
Each notebook's wall time is summed over the calls into ``<state>/timings.json``.

``pack`` puts what a later call needs (models, executed notebooks, results and timings of the
profile; not the preprocessed crops, which are recomputed) into at most 8 parts of at most
15 MB under ``--out``, the limits of what comes back from a device call; ``unpack`` puts them
back. ``report`` fills the README's ``results:<profile>`` block through ``fkd report``
(devices, wall time per notebook, training images/s, accuracy next to the cpu profile's).

Sizes: a paper-sized model (2.1 M parameters) is 25 MB as a ``.keras`` file with its Adam state,
so the full profile's 13 models alone make about 190 MB of state, its ablations more; the
300-W copy is 82 MB and tensorflow-cpu's wheel 259 MB. Where one call can carry and bring back
only 64 MB and the GPU machine has no package index (this workplace's device tool), the state
cannot travel whole: there, run it on a machine whose disk keeps ``--state`` between calls.

A device call (the project's device tool), once the state is unpacked into ``gpu-run/`` and
``gpu-run`` named in ``carry`` (ignored by git: ``echo /gpu-run/ >> .git/info/exclude``)::

    python benchmarks/full_on_gpu.py run --state gpu-run --data-dir DATA --budget-s 500;
    python benchmarks/full_on_gpu.py pack --state gpu-run --out "$OUT"

then, here, ``unpack`` the files it brought back and call again until ``run`` exits 0.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PART_BYTES = 15 * 2 ** 20
MAX_PARTS = 8
BUDGET_REACHED = 3


def home(state):
    return Path(state).resolve() / "home"


def fkd_env(state):
    return {**os.environ, "FKD_HOME": str(home(state)), "PYTHONUNBUFFERED": "1"}


def load_timings(state):
    path = Path(state) / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def save_timings(state, timings):
    path = Path(state) / "timings.json"
    path.write_text(json.dumps(timings, indent=1))


def run(args):
    """fkd reproduce under a time budget; notebook wall times summed over calls."""
    Path(args.state).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fkd_utils.cli", "reproduce", "--profile", args.profile,
           "--data-dir", str(Path(args.data_dir).resolve())]
    cmd += (["--only", args.only] if args.only else []) + (["--yes"] if args.yes else [])
    timings = load_timings(args.state)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=fkd_env(args.state), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    stopped = threading.Event()

    def stop():  # the whole process group: fkd reproduce and its notebook kernel
        stopped.set()
        os.killpg(proc.pid, signal.SIGTERM)

    timer = threading.Timer(args.budget_s, stop)
    timer.start()
    current, started = None, None
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            name = line.strip().split(":")[0]
            if line.strip().endswith("running ..."):
                current, started = name, time.time()
                if timings.get(current, {}).get("done"):  # a finished notebook runs anew (changed)
                    timings.pop(current)
            elif current and name == current and " done in " in line:
                entry = timings.setdefault(current, {"wall_s": 0.0, "calls": 0})
                entry.update(wall_s=entry["wall_s"] + time.time() - started,
                             calls=entry["calls"] + 1, done=True)
                save_timings(args.state, timings)
                current = None
        proc.wait()
    finally:
        timer.cancel()
    if current:  # stopped (or failed) inside a notebook: its time so far counts too
        entry = timings.setdefault(current, {"wall_s": 0.0, "calls": 0})
        entry.update(wall_s=entry["wall_s"] + time.time() - started, calls=entry["calls"] + 1,
                     done=False)
        save_timings(args.state, timings)
    if stopped.is_set():
        print(f"full_on_gpu: stopped after {args.budget_s:.0f} s"
              + (f" inside {current}" if current else "") + "; call run again to resume")
        return BUDGET_REACHED
    return proc.returncode


def state_files(state, profile):
    base = home(state)
    yield Path(state) / "timings.json", "timings.json"
    for folder in (base / "models" / profile, base / "runs" / profile, base / "results" / profile):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            finished = path.name.endswith(".best.keras") and \
                path.with_name(path.name[:-len(".best.keras")] + ".json").is_file()
            if path.is_file() and not finished:  # a finished model's .keras holds its best epoch
                yield path, str(path.relative_to(Path(state).resolve()))


def pack(args):
    """The state as parts of at most 15 MB (at most 8), for a device call to bring back."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "state.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path, name in state_files(args.state, args.profile):
            if path.is_file():
                tar.add(path, arcname=name)
    data = archive.read_bytes()
    archive.unlink()
    parts = [data[i:i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
    if len(parts) > MAX_PARTS:
        raise SystemExit(f"full_on_gpu: the state is {len(data) / 2 ** 20:.0f} MB, more than "
                         f"{MAX_PARTS} parts of {PART_BYTES // 2 ** 20} MB")
    for i, part in enumerate(parts):
        (out / f"state.tar.gz.{i:02d}").write_bytes(part)
    print(f"packed {len(data) / 2 ** 20:.1f} MB in {len(parts)} parts into {out}")
    return 0


def unpack(args):
    parts = sorted(Path(args.parts).glob("state.tar.gz.[0-9][0-9]"))
    if not parts:
        raise SystemExit(f"full_on_gpu: no state.tar.gz.NN parts in {args.parts}")
    archive = Path(args.state) / "incoming.tar.gz"
    Path(args.state).mkdir(parents=True, exist_ok=True)
    archive.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(archive) as tar:
        tar.extractall(Path(args.state).resolve(), filter="data")
    archive.unlink()
    print(f"unpacked {len(parts)} parts into {args.state}")
    return 0


def report(args):
    """fkd report for the profile, with the wall times summed over calls, into the README."""
    walls = {nb: t["wall_s"] for nb, t in load_timings(args.state).items()}
    wall_path = Path(args.state) / "wall_times.json"
    wall_path.write_text(json.dumps(walls))
    compare = Path(args.compare_home or os.environ.get("FKD_HOME", ROOT)) / "results" / args.compare
    target = home(args.state) / "results" / args.compare
    if (compare / "results.json").is_file() and not (target / "results.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        (target / "results.json").write_bytes((compare / "results.json").read_bytes())
    cmd = [sys.executable, "-m", "fkd_utils.cli", "report", "--profile", args.profile,
           "--compare", args.compare, "--wall-times", str(wall_path)]
    cmd += ["--readme", str(Path(args.readme).resolve())] if args.readme else []
    return subprocess.run(cmd, cwd=ROOT, env=fkd_env(args.state)).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func in (("run", run), ("pack", pack), ("unpack", unpack), ("report", report)):
        p = sub.add_parser(name)
        p.add_argument("--state", default="gpu-run", help="folder of the run's state")
        p.add_argument("--profile", default="full")
        p.set_defaults(func=func)
        if name == "run":
            p.add_argument("--data-dir", required=True)
            p.add_argument("--only", default=None, help="notebook numbers, e.g. 02,03")
            p.add_argument("--budget-s", type=float, default=540,
                           help="stop after this many seconds (a device call lasts 600)")
            p.add_argument("--yes", action="store_true", help="passed on to fkd reproduce")
        elif name == "pack":
            p.add_argument("--out", required=True)
        elif name == "unpack":
            p.add_argument("parts", help="folder holding state.tar.gz.NN")
        else:
            p.add_argument("--readme", default=None)
            p.add_argument("--compare", default="cpu")
            p.add_argument("--compare-home", default=None,
                           help="FKD_HOME holding results/<compare>/ (default: $FKD_HOME or "
                                "the project)")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
