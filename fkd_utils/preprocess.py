"""Crop every face once and cache the arrays (introduced in notebook 01).

:func:`load_faces` returns the face crops of a split with their keypoints, resized to the
model size; the arrays are cached in ``data/processed/<key>.npz``, keyed by the data files
(images: names and sizes; ``.pts`` and official box files: their contents) and the
settings, not by modification times, so a fresh copy of the same data reuses them, so later notebooks do not redo the cropping. Raw data is only read, never modified.
"""
import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import paths
from .crop import face_crop, region_crop
from .data import (BOX_DIR, box_file_name, load_boxes, points_box, resolve_data_dir,
                   split_samples)
from .io import pixels_to_pts, pts_to_pixels, read_image, read_pts

CACHE_VERSION = 3  # 3: OpenCV resampling
BOX_SOURCES = ("bb_detector", "bb_ground_truth")


def _content_hash(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _fingerprint(samples, extra):
    # by content, not mtime: copying or re-mounting the same data must not orphan its models
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for s in samples:
        digest.update(f"{s.id}|{s.image_path.name}|{s.image_path.stat().st_size}|"
                      f"{s.pts_path.name}|{_content_hash(s.pts_path)}".encode())
    return digest.hexdigest()[:20]


def _box_files_state(data_dir, samples):
    """(file name, content hash) of the official box file of each folder, None if absent.

    Part of the crop cache key: the boxes place the crops, so adding, changing or removing a
    ``.mat`` file must rebuild the crops instead of serving stale ones.
    """
    root = resolve_data_dir(data_dir) / BOX_DIR
    state = []
    for folder in sorted({s.folder for s in samples}):
        path = root / box_file_name(folder)
        state.append([path.name, _content_hash(path) if path.is_file() else None])
    return state


def data_fingerprint(data_dir):
    """A short hash of every file of every split and of the official box files: names models
    and results to their data."""
    from .data import scan
    samples, _, _ = scan(data_dir)
    return _fingerprint(samples, {"data_dir": str(resolve_data_dir(data_dir)),
                                  "box_files": _box_files_state(data_dir, samples)})


def _atomic_savez(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _cached(key, build, cache):
    path = paths.processed_dir() / f"{key}.npz"
    if cache and path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    arrays = build()
    if cache:
        _atomic_savez(path, **arrays)
    return arrays


def read_sample(sample):
    """(image uint8, points as 0-based pixel centres) of one sample."""
    return read_image(sample.image_path), pts_to_pixels(read_pts(sample.pts_path))


def read_samples(samples, workers=2):
    """Images and points of many samples, decoded in parallel threads."""
    with ThreadPoolExecutor(workers) as pool:
        pairs = list(pool.map(read_sample, samples))
    return [p[0] for p in pairs], np.stack([p[1] for p in pairs])


def face_boxes(samples, data_dir, box_source="bb_detector", points=None):
    """The face box (1-based) of each sample and where it came from.

    Samples without an official box file fall back to the tight box of their ground-truth
    points, which is recorded (and warned about) since it flatters the results.
    """
    if box_source not in BOX_SOURCES:
        raise ValueError(f"box_source must be one of {BOX_SOURCES}, got {box_source!r}")
    official = load_boxes(data_dir)
    boxes, sources = [], []
    for i, s in enumerate(samples):
        entry = official.get(s.id, {})
        if box_source in entry:
            boxes.append(entry[box_source])
            sources.append(box_source)
        else:
            pts = read_pts(s.pts_path) if points is None else pixels_to_pts(points[i])
            boxes.append(points_box(pts))
            sources.append("points")
    n_fallback = sources.count("points")
    if n_fallback and box_source == "bb_detector":
        warnings.warn(f"{n_fallback} of {len(samples)} samples have no official box file; "
                      "their crops use the ground-truth points' box", stacklevel=2)
    return np.stack(boxes), np.array(sources)


def load_faces(data_dir, split, size, margin=0.2, box_source="bb_detector", cache=True):
    """Face crops of one split, resized to ``size``, as a dict of arrays.

    Keys: ``ids``, ``subsets``, ``images`` (N, size, size, 3) uint8, ``points`` (N, 68, 2)
    0-based in the original image, ``crop_points`` (N, 68, 2) in crop pixels, ``transforms``
    (N, 3) (see :mod:`fkd_utils.crop`), ``boxes`` (N, 4) 1-based and ``box_sources``.
    """
    samples = split_samples(data_dir, split)
    settings = {"v": CACHE_VERSION, "kind": "faces", "split": split, "size": size,
                "margin": margin, "box_source": box_source,
                "data_dir": str(resolve_data_dir(data_dir)),
                "box_files": _box_files_state(data_dir, samples)}

    def build():
        images, points = read_samples(samples)
        boxes, sources = face_boxes(samples, data_dir, box_source, points)
        crops, transforms, moved = [], [], []
        for image, box, pts in zip(images, boxes, points):
            crop, transform, in_crop = face_crop(image, box, size, margin, pts)
            crops.append(np.round(crop * 255).astype(np.uint8))
            transforms.append(transform)
            moved.append(in_crop)
        return {"ids": np.array([s.id for s in samples]),
                "subsets": np.array([s.subset for s in samples]),
                "images": np.stack(crops), "points": points,
                "crop_points": np.stack(moved), "transforms": np.stack(transforms),
                "boxes": boxes, "box_sources": sources}

    return _cached(f"faces-{split}-{size}-{_fingerprint(samples, settings)}", build, cache)


def load_originals(data_dir, split):
    """Original images (list) and ground-truth points (N, 68, 2, 0-based) of a split."""
    samples = split_samples(data_dir, split)
    images, points = read_samples(samples)
    return [s.id for s in samples], images, points


def crop_regions(images, shapes, region, size, jitter=0.0, seed=0, copies=1):
    """Region crops placed from full shapes (ground truth or predictions).

    Returns ``crops`` (N*copies, size, size, 3) uint8, ``transforms`` (N*copies, 3), the index
    of the source face of each crop, and how many crops had to be moved inside the image.
    """
    rng = np.random.default_rng(seed)
    crops, transforms, source, clipped = [], [], [], 0
    for _ in range(copies):
        for i, (image, shape) in enumerate(zip(images, shapes)):
            crop, transform, was_clipped = region_crop(image, shape, region, size,
                                                       jitter=jitter, rng=rng)
            crops.append(np.round(crop * 255).astype(np.uint8))
            transforms.append(transform)
            source.append(i)
            clipped += int(was_clipped)
    return np.stack(crops), np.stack(transforms), np.array(source), clipped
