"""The 300-W layout, the paper's split, and checks of a data directory (introduced in notebook 01).

The official release is a set of folders with images (``.jpg``/``.png``) beside ``.pts``
files, plus ``Bounding Boxes/bounding_boxes_*.mat``. The paper's split:

* train = AFW + HELEN train + LFPW train (3148 images),
* validation = HELEN test + LFPW test + iBUG (689: "common" 554 + "challenging" 135),
* test = 300-W indoor + outdoor (600).

Folders that are absent on disk are reported as absent, never faked. Sample ids are image
paths relative to the data directory, e.g. ``helen/testset/296814969_3.jpg``.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import DataError, read_boxes, read_pts

#: folder -> (subset, split), in the official layout.
LAYOUT = {
    "afw": ("afw", "train"),
    "helen/trainset": ("helen", "train"),
    "lfpw/trainset": ("lfpw", "train"),
    "helen/testset": ("helen", "validation"),
    "lfpw/testset": ("lfpw", "validation"),
    "ibug": ("ibug", "validation"),
    "300W/01_Indoor": ("indoor", "test"),
    "300W/02_Outdoor": ("outdoor", "test"),
}
SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
BOX_DIR = "Bounding Boxes"
#: How far outside the image a keypoint may lie, as a fraction of the image size, before the
#: annotation is reported as broken (300-W has a few points just outside the frame).
OUTSIDE_TOLERANCE = 0.25


def box_file_name(folder):
    """``helen/testset`` -> ``bounding_boxes_helen_testset.mat`` (the official naming)."""
    return "bounding_boxes_" + folder.replace("/", "_") + ".mat"


@dataclass(frozen=True)
class Sample:
    """One annotated face: its id (relative image path), files, subset and split."""
    id: str
    image_path: Path
    pts_path: Path
    subset: str
    split: str

    @property
    def folder(self):
        return self.id.rsplit("/", 1)[0]


def resolve_data_dir(data_dir):
    """A data directory as an absolute Path; a clear error if it does not exist."""
    path = Path(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"{path}: data directory not found")
    return path


def _pair_files(folder_path, root):
    """(samples' stems -> image path), plus problems for unpaired files."""
    images, pts, problems = {}, {}, []
    for path in sorted(folder_path.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            images[path.stem] = path
        elif path.suffix.lower() == ".pts":
            pts[path.stem] = path
    for stem in sorted(set(pts) - set(images)):
        problems.append(f"{pts[stem].relative_to(root)}: .pts file without an image")
    for stem in sorted(set(images) - set(pts)):
        problems.append(f"{images[stem].relative_to(root)}: image without a .pts file")
    pairs = {stem: (images[stem], pts[stem]) for stem in sorted(set(images) & set(pts))}
    return pairs, problems


def scan(data_dir):
    """Find every sample in the 300-W layout.

    Returns ``(samples, absent_folders, problems)``; problems are strings naming the file.
    """
    root = resolve_data_dir(data_dir)
    samples, absent, problems = [], [], []
    for folder, (subset, split) in LAYOUT.items():
        folder_path = root / folder
        if not folder_path.is_dir():
            absent.append(folder)
            continue
        pairs, unpaired = _pair_files(folder_path, root)
        problems += unpaired
        for image_path, pts_path in pairs.values():
            sample_id = image_path.relative_to(root).as_posix()
            samples.append(Sample(sample_id, image_path, pts_path, subset, split))
    if not samples:
        raise DataError(f"{root}: no 300-W folder with images and .pts files "
                        f"(expected some of {', '.join(LAYOUT)})")
    return samples, absent, problems


def split_samples(data_dir, split):
    """The samples of one split; a clear error if the split is absent or empty."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    samples, absent, _ = scan(data_dir)
    chosen = [s for s in samples if s.split == split]
    if not chosen:
        missing = [f for f, (_, sp) in LAYOUT.items() if sp == split]
        raise DataError(f"{resolve_data_dir(data_dir)}: split {split!r} is empty or absent "
                        f"(folders {', '.join(missing)} hold no samples)")
    return chosen


def available_splits(data_dir):
    """The splits that have at least one sample."""
    samples, _, _ = scan(data_dir)
    return [split for split in SPLITS if any(s.split == split for s in samples)]


def load_boxes(data_dir):
    """Face boxes of every sample whose folder has an official box file.

    Returns ``{sample_id: {"bb_detector": (4,), "bb_ground_truth": (4,)}}`` (1-based boxes).
    """
    root = resolve_data_dir(data_dir)
    boxes = {}
    for folder in LAYOUT:
        path = root / BOX_DIR / box_file_name(folder)
        if path.is_file():
            for name, entry in read_boxes(path).items():
                boxes[f"{folder}/{name}"] = entry
    return boxes


def points_box(points):
    """Tight ``[x_min, y_min, x_max, y_max]`` box of points (same convention as the points)."""
    points = np.asarray(points)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _decoded_size(path):
    """(width, height) of an image after decoding all its pixels: a file whose header reads
    but whose pixel data is truncated or corrupt is a DataError, not a valid size."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            width, height = im.size
            im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))  # JPEG: fast, whole file
            im.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise DataError(f"{path}: cannot decode image ({type(err).__name__}: {err})") from None
    return width, height


def check_sample(sample, tolerance=OUTSIDE_TOLERANCE):
    """Problems with one sample (unreadable .pts or image, points far outside the image)."""
    try:
        points = read_pts(sample.pts_path)
        width, height = _decoded_size(sample.image_path)
    except DataError as err:
        return [str(err)]
    lo = -tolerance * np.array([width, height])
    hi = (1 + tolerance) * np.array([width, height])
    if np.any(points < lo) or np.any(points > hi):
        return [f"{sample.pts_path}: keypoints far outside the {width}x{height} image "
                f"(x in [{points[:, 0].min():.0f}, {points[:, 0].max():.0f}], "
                f"y in [{points[:, 1].min():.0f}, {points[:, 1].max():.0f}])"]
    return []


def check_boxes(data_dir, samples):
    """Problems with the official face boxes of ``samples``: a folder's box file missing or
    unreadable, images it has no box for, NaN or inverted boxes (every one listed, the check
    goes on). Returns ``(problems, ids of samples without a usable box)``."""
    root = resolve_data_dir(data_dir)
    problems, no_box = [], []
    by_folder = {}
    for sample in samples:
        by_folder.setdefault(sample.folder, []).append(sample)
    for folder, chosen in by_folder.items():
        path = root / BOX_DIR / box_file_name(folder)
        try:
            boxes = read_boxes(path) if path.is_file() else None
        except DataError as err:
            problems.append(str(err))
            boxes = None
        else:
            if boxes is None:
                problems.append(f"{path}: box file missing ({len(chosen)} images of {folder} have "
                                "no official face box)")
        if boxes is None:
            no_box += [s.id for s in chosen]
            continue
        missing = [s.id for s in chosen if s.image_path.name not in boxes]
        if missing:
            problems.append(f"{path}: no box for {len(missing)} images of {folder} "
                            f"(e.g. {missing[0]})")
        no_box += missing
        for s in chosen:
            for field, box in boxes.get(s.image_path.name, {}).items():
                problem = _box_problem(box)
                if problem:
                    problems.append(f"{path}: {s.image_path.name}: {field} {problem}")
                    if field == "bb_detector":
                        no_box.append(s.id)
    return problems, no_box


def _box_problem(box):
    box = np.asarray(box, float)
    if box.shape != (4,):
        return f"has {box.size} values instead of 4"
    if not np.all(np.isfinite(box)):
        return f"has NaN or infinite values {box.tolist()}"
    if box[2] <= box[0] or box[3] <= box[1]:
        return f"is inverted or empty {box.tolist()} ([x_min, y_min, x_max, y_max])"
    return None


def check(data_dir):
    """Counts per split and subset, absent folders and problems found in a data directory.

    The dict is what ``fkd data check --json`` prints.
    """
    samples, absent, problems = scan(data_dir)
    for sample in samples:
        problems += check_sample(sample)
    box_problems, no_box = check_boxes(data_dir, samples)
    problems += box_problems
    splits = {}
    for split in SPLITS:
        chosen = [s for s in samples if s.split == split]
        subsets = {}
        for s in chosen:
            subsets[s.subset] = subsets.get(s.subset, 0) + 1
        splits[split] = {"count": len(chosen), "subsets": subsets}
        if not chosen:
            splits[split]["absent"] = True
    return {"data_dir": str(resolve_data_dir(data_dir)), "splits": splits,
            "absent_folders": absent, "samples_without_box": len(no_box),
            "problems": problems}


def default_data_dir(counts="default", seed=0):
    """The embedded default: synthetic faces in the 300-W layout, generated on first use.

    ``counts``: "default" (a few hundred faces, the quick profile) or "paper" (3148 / 689 /
    600). Lives in ``data/synthetic-<counts>-seed<seed>``.
    """
    from . import paths, synthetic
    out = paths.data_root() / f"synthetic-{counts}-seed{seed}"
    if not (out / "README.md").is_file():
        sizes = {"default": synthetic.DEFAULT_COUNTS, "paper": synthetic.PAPER_COUNTS}[counts]
        synthetic.generate(out, counts=sizes, seed=seed, overwrite=out.exists())
    return out


def data_dir_for(data_dir, profile):
    """``data_dir`` itself, or for an empty value the profile's default data.

    The ``real`` and ``release`` profiles default to ``../shared/data/300w`` when present;
    others to the embedded synthetic set.
    """
    from .paths import real_300w_dir
    from .profiles import get_profile
    if data_dir:
        return resolve_data_dir(data_dir)
    p = get_profile(profile)
    if p.name in ("real", "release"):
        real = real_300w_dir()
        if real is None:
            raise DataError(f"profile '{p.name}' needs real 300-W: pass data_dir "
                            "(../shared/data/300w is absent here)")
        return real
    return default_data_dir(p.synthetic_counts)


def is_synthetic(data_dir):
    """Whether a data directory is a synthetic set written by :mod:`fkd_utils.synthetic`."""
    readme = resolve_data_dir(data_dir) / "README.md"
    return readme.is_file() and "synthetic" in readme.read_text(errors="replace").lower()[:400]


def describe(data_dir, split):
    """A label for figures and tables: which faces a number was measured on."""
    kind = "synthetic faces" if is_synthetic(data_dir) else "real faces"
    return f"{split} split, {kind} ({resolve_data_dir(data_dir).name})"


def ground_truth(data_dir, split):
    """(ids, subsets, points (N, 68, 2) 1-based) of a split, from its ``.pts`` files."""
    samples = split_samples(data_dir, split)
    return (np.array([s.id for s in samples]), np.array([s.subset for s in samples]),
            np.stack([read_pts(s.pts_path) for s in samples]))
