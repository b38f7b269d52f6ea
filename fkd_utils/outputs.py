"""Where ``fkd predict`` writes its results, and how (introduced in notebook 08).

One writer owns the three promises of the output folder:

* **Names**: each input gets ``<stem>.fkd.json`` (+ ``<stem>.fkd.png``), the stem derived from
  the input's path so that two inputs never share one (see :func:`output_stems`).
* **Nothing is written over**: every output a run would write (JSON and overlay) is checked
  before any work starts, and each file is then created exclusively (written aside, then
  hard-linked into place, which fails if the name appeared meanwhile). A lock file stops a
  second run into the same folder while one is writing. ``overwrite=True`` replaces.
* **Provenance**: the caller's settings (approach, stages, detector, weights and their
  checksum, fkd version) go into every result JSON.
"""
import json
import os
from collections import Counter
from pathlib import Path

from .io import DataError

LOCK_NAME = ".fkd-predict.lock"


def strict_json(value, indent=None):
    """JSON that every reader accepts: NaN and infinities (which ``json.dumps`` writes as bare
    ``NaN`` / ``Infinity``) become null."""
    import math

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    try:  # the common case, at json's own speed
        return json.dumps(value, indent=indent, allow_nan=False)
    except ValueError:
        return json.dumps(clean(value), indent=indent, allow_nan=False)


def output_stems(files, stems):
    """Unique output stems for input ``files`` given their preferred ``stems`` (a file's name,
    or its path inside a given folder with '/' -> '__').

    Stems shared by several inputs (``a/x.jpg`` and ``b/x.jpg``; compared case-insensitively,
    as on macOS and Windows disks) become the input's whole path with '/' -> '__'; a stem
    still shared after that gets ``~2``, ``~3``... in input order.
    """
    stems = list(stems)
    taken = Counter(s.casefold() for s in stems)
    stems = [_path_stem(f) if taken[s.casefold()] > 1 else s for f, s in zip(files, stems)]
    seen, unique = Counter(), []
    for stem in stems:
        seen[stem.casefold()] += 1
        count = seen[stem.casefold()]
        unique.append(stem if count == 1 else f"{stem}~{count}")
    return unique


def _path_stem(path):
    parts = [("up" if p == ".." else p) for p in Path(os.path.normpath(path)).parts
             if p not in ("/", ".")]
    return "__".join(parts)


class ResultWriter:
    """Writes ``<stem>.fkd.json`` and ``<stem>.fkd.png`` into ``out_dir`` for a set of stems.

    Use as a context manager: entering checks the folder (creating it), that no output exists
    (unless ``overwrite``) and takes the folder's lock; leaving releases it.
    """

    def __init__(self, out_dir, stems, overlays=True, overwrite=False, settings=None):
        self.out_dir = Path(out_dir)
        self.stems, self.overlays, self.overwrite = list(stems), overlays, overwrite
        self.settings = settings or {}
        self._lock = None

    def paths(self, stem):
        names = [f"{stem}.fkd.json"] + ([f"{stem}.fkd.png"] if self.overlays else [])
        return [self.out_dir / n for n in names]

    def __enter__(self):
        _make_folder(self.out_dir)
        self._take_lock()
        try:
            if not self.overwrite:
                clashes = [p for s in self.stems for p in self.paths(s) if os.path.lexists(p)]
                if clashes:
                    raise FileExistsError(f"{clashes[0]}: exists ({len(clashes)} results would "
                                          "be replaced); pass --overwrite or another --out")
        except BaseException:
            self._release_lock()
            raise
        return self

    def __exit__(self, *exc):
        self._release_lock()
        return False

    def write(self, stem, record, overlay_png=None):
        """Write one image's record (with the run's settings) and its overlay PNG bytes."""
        record = {**record, "settings": self.settings}
        json_path, *png = self.paths(stem)
        _write_new(json_path, strict_json(record).encode(), self.overwrite)
        if png and overlay_png is not None:
            _write_new(png[0], overlay_png, self.overwrite)

    def _take_lock(self):
        lock = self.out_dir / LOCK_NAME
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _lock_held(lock):
                    raise FileExistsError(f"{self.out_dir}: another fkd predict is writing here "
                                          f"({lock.name}); wait for it or pass another --out")
                lock.unlink(missing_ok=True)  # left by a killed run
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            self._lock = lock
            return
        raise FileExistsError(f"{lock}: cannot take the output folder's lock")

    def _release_lock(self):
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None


def _make_folder(folder):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()),
                       folder)
        raise DataError(f"{folder}: cannot be the output folder: {blocker} is a file") from None
    except PermissionError:
        raise DataError(f"{folder}: cannot create the output folder (permission denied)") from None
    if not os.access(folder, os.W_OK):
        raise DataError(f"{folder}: the output folder is not writable")


def _write_new(path, data, overwrite=False):
    """Write ``data`` to ``path`` all at once: aside first, then linked into place, which
    fails with FileExistsError if ``path`` exists (``overwrite``: replaced instead)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    try:
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path}: appeared while this run was writing (another run "
                                  "into the same --out?); not replaced") from None
        except OSError:  # a file system without hard links: exclusive creation instead
            with open(path, "xb") as fh:
                fh.write(data)
    finally:
        tmp.unlink(missing_ok=True)


#: Overlays of photos with a longer side above this are drawn on a copy scaled down to it
#: (the JSON says by how much): an 8000 x 8000 photo's full-size overlay costs a 192 MB
#: image and seconds of PNG compression for a picture nobody views at that size.
OVERLAY_MAX_SIDE = 4096
BOX_COLOUR, POINT_COLOUR = (255, 255, 0), (255, 0, 0)   # RGB: yellow boxes, red points


def overlay_scale(shape, max_side=OVERLAY_MAX_SIDE):
    """Scale of the overlay of an image of ``shape``: 1 unless its longer side exceeds
    ``max_side``."""
    return min(1.0, max_side / max(shape[0], shape[1]))


def draw_overlay(image, faces, max_side=OVERLAY_MAX_SIDE):
    """The RGB image with each face box and its 68 points drawn (OpenCV, sub-pixel positions,
    anti-aliased points), at the image's own size, or scaled by :func:`overlay_scale`.

    Pixel (0, 0)'s centre is (0, 0) for the points and (1, 1) for the boxes (1-based), as in
    the result JSON; nothing drawn outside the image changes the canvas."""
    import cv2
    import numpy as np
    scale = overlay_scale(image.shape, max_side)
    canvas = np.ascontiguousarray(image[..., :3])
    if scale < 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    else:
        canvas = canvas.copy()
    shift = 4                                     # coordinates in 1/16 pixel
    # pixel centres map as (v + 0.5) * scale - 0.5 (identity at scale 1)
    fixed = lambda xy: tuple(int(round(((v + 0.5) * scale - 0.5) * (1 << shift))) for v in xy)
    side = max(canvas.shape[:2])
    radius, thick = max(1, round(side / 400)), max(1, round(side / 600))
    for face in faces:
        x0, y0, x1, y1 = np.asarray(face["box"], float) - 1.0
        cv2.rectangle(canvas, fixed((x0, y0)), fixed((x1, y1)), BOX_COLOUR, thick, cv2.LINE_8,
                      shift)  # crisp: the box's edges lie on its pixels
        for point in np.asarray(face["points"], float):
            if np.all(np.isfinite(point)):
                cv2.circle(canvas, fixed(point), radius << shift, POINT_COLOUR, -1,
                           cv2.LINE_AA, shift)
    return canvas, scale


def overlay_png(image, faces, max_side=OVERLAY_MAX_SIDE):
    """PNG bytes of :func:`draw_overlay` (fast compression), and the overlay's scale."""
    import cv2
    canvas, scale = draw_overlay(image, faces, max_side)
    ok, data = cv2.imencode(".png", canvas[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise DataError("cannot encode the overlay as PNG")
    return data.tobytes(), scale


def _lock_held(lock):
    """Whether a lock file belongs to a running process (one just created, its pid not yet
    written, counts as running)."""
    import time
    try:
        text = lock.read_text().strip()
        if not text:
            return time.time() - lock.stat().st_mtime < 60
        return process_alive(int(text))
    except (OSError, ValueError):
        return False


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
