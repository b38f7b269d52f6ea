"""The paper's three approaches and the oracle (introduced in notebooks 02-04).

1. ``end_to_end``: one ResNet regresses the 68 points from the face crop.
2. ``region``: a ResNet per region (each eye with its brow, nose, mouth) predicts that region's
   points in a crop placed from approach 1's prediction; the jaw stays from approach 1.
3. ``box``: a ResNet predicts the four region boxes from the face crop; the region ResNets
   of approach 2 then predict inside them (jaw from approach 1).
4. ``oracle``: the region ResNets on crops placed from the ground truth: an upper bound, not a
   result, since a real system never has the ground truth.

Models are trained once per profile and data set and kept as ``.keras`` files in
``models/<profile>/<data>-<fingerprint>/`` with a JSON manifest; they are reused unless
retrained (``retrain=True``, or a list of model names; ``fkd train --retrain``).
Predictions are saved to ``results/<profile>/<approach>_<split>.npz`` in original-image
pixels (the ``.pts`` convention), so evaluation and later notebooks need no retraining.
"""
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import paths
from .augment import AugmentConfig
from .crop import (box_to_square, crop_image, face_crop, from_crop, region_square,
                   square_transform, to_crop)
from .data import points_box
from .io import DataError, pixels_to_pts
from .markup import JAW, JAW_HALF, MIRROR, REGIONS, mirror_points
from .mirror_bias import mirrored, shift_x
from .shape_correction import corrected
from .models import PAPER_STAGES, REGION_STAGES, build_resnet
from .preprocess import crop_regions, data_fingerprint, load_faces, load_originals
from .profiles import get_profile
from .train import (REGION_MARGIN, compile_model, data_parallel, fit_model, predict_targets,
                    scaled_for, selection_mask, target_size, target_stats, variable_devices)

APPROACHES = ("end_to_end", "region", "box", "oracle")
OUR_APPROACHES = ("cascade",)
FACE_AUGMENT = AugmentConfig()
#: The release profile's face models: shift and scale jitter as wide as the spread of fkd
#: predict's own calibrated HOG boxes around the 300-W boxes (every 4th training image, 487
#: matched: centre std 0.086 / 0.056 of the box side in x / y, log-scale std 0.090;
#: benchmarks/detector_residuals.py). A box shift is the face's shift in the crop (1.4 box
#: sides): std 0.061 of the crop in x, a uniform range of +-0.106; scale std 0.09 (truncated
#: normal of std 0.1 x 0.88).
DETECTOR_AUGMENT = AugmentConfig(translate=0.1, scale=0.1)
#: Region crops: no flip for the eyes (a flipped right eye is a left eye), gentler geometry.
EYE_AUGMENT = AugmentConfig(rotation=10.0, shear=0.05, scale=0.05, translate=0.04, flip=0.0)
CENTRE_AUGMENT = AugmentConfig(rotation=10.0, shear=0.05, scale=0.05, translate=0.04, flip=0.5)
REGION_JITTER = 0.06
#: Stage 2 of our cascade sees faces cropped around a first estimate of the shape: train it on
#: crops around the true shape, jittered like a first estimate's errors.
REFINE_AUGMENT = AugmentConfig(rotation=15.0, shear=0.08, scale=0.05, translate=0.03, flip=0.5)
REFINE_MARGIN = 0.2
#: Our cascade's refiners, in order (each reads a crop around the mean of the stages before
#: it), with the margin of that crop: later stages see more context (the jaw's outline).
REFINER_MARGINS = {"cascade_stage2": 0.3, "cascade_stage3": 0.4}
CASCADE_REFINERS = tuple(REFINER_MARGINS)
#: Our cascade's own region ResNets (the paper's region models, trained with our settings).
CASCADE_REGIONS = {r: f"cascade_region_{r}" for r in REGIONS}
#: Weight of the region ResNets' points in our cascade's result (chosen on the selection tenth:
#: see :func:`predict_cascade`).
REGION_BLEND = 0.6
#: Our jaw ResNet: half the jaw (``markup.JAW_HALF``, ear to chin) in a region crop, the left
#: half read from the mirrored photo, so one model learns from both halves of every training
#: face (and trains without random mirroring). Slimmer than the other region ResNets (two
#: stages of 128 and 256 filters, 331 k parameters) to keep the shipped folder under 40 MB.
JAW_MODEL = "cascade_region_jaw"
JAW_TARGET = "region:jaw_half"
JAW_STAGES = ((128, 1, 1), (256, 1, 2))
JAW_AUGMENT = EYE_AUGMENT
#: Weight of the jaw ResNet's points on the jaw, chosen on the selection tenth (see
#: :func:`predict_cascade`; ``benchmarks/jaw_blend.py``).
JAW_BLEND = 0.25
#: How many of the cascade's stages ``fkd predict`` runs unless told (``--stages``): the most
#: accurate setting on the selection tenth, end to end with fkd's own detector, that runs as
#: fast as the previous default (stage 1 in Keras) with the shipped int8 models (``--runtime
#: auto``): 53.3 against 54.9 faces/s side by side, batches of 32, HOG (README's speed table,
#: benchmarks/predict_speed.py). Shipped weights, tenth (193 images), NME with equal stage
#: weights: 1 stage 4.340 %, 2 stages 4.086 %, 3 stages 4.049 % (stage 3 has no int8 model, so
#: it runs in Keras); with ``STAGE_WEIGHTS`` and the release profile's stage 3: 2 stages
#: 4.046 %, 3 stages 3.983 %; then with the face check and the release eye ResNets: 1 stage
#: 4.332 %, 2 stages 3.658 %, 3 stages 3.600 %; then with the mirror-bias and shape corrections
#: (:mod:`mirror_bias`, :mod:`shape_correction`): 1 stage 4.049 %, 2 stages 3.497 %, 3 stages
#: 3.460 %; then with the jaw ResNet: 2 stages 3.459 %, 3 stages 3.431 %. With the 300-W boxes
#: instead (the cpu weights, Keras): 1 stage 3.68 %, 2 stages 3.55 %, 3 stages 3.53 %.
PREDICT_STAGES = 2
#: How much each stage's points count in the cascade's result, by how many stages ran: later
#: stages read a crop placed by the earlier ones, so they count more. Chosen on the selection
#: tenth with the shipped weights, fkd's own detector (blends of the stored points of each
#: stage, then checked end to end): 2 stages 4.086 % (equal weights) -> 4.045 % at 0.3 / 0.7
#: (0.2 / 0.8 4.041, 0 / 1 4.062); 3 stages 4.049 -> 4.035 % at 0.2 / 0.4 / 0.4. The jaw gains
#: most (2 stages: 7.34 -> 7.19 %; the inner points 3.31 -> 3.30 %).
#: Tried again for the release weights with the region and jaw ResNets: on the tenth from the
#: 300-W boxes (Keras, mirror biases, no shape correction) 0.4 / 0.6 scored 3.278 % against
#: 3.288 % and 0.3 / 0.4 / 0.3 3.272 against 3.282 %, but end to end as ``fkd predict`` runs
#: (own detector, shape correction fitted again) 3.456 against 3.453 % and 3.437 against
#: 3.431 % (Keras): the shape correction already weighs the stages, so these stay.
STAGE_WEIGHTS = {1: (1.0,), 2: (0.3, 0.7), 3: (0.2, 0.4, 0.4)}


@dataclass(frozen=True)
class ModelSpec:
    """What one model is: its input, target and architecture."""
    name: str
    target: str
    input_size: int
    stages: tuple = PAPER_STAGES
    head: str = "paper"
    loss: str = "mse"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    precision: str = "float32"
    reduce_lr: bool = False
    crop: str = "detector"      # "detector": official face boxes; "points": the shape's box
    dense_layers: int = 1
    optimizer: str = "adam"
    batch_size: int | None = None   # None: the profile's
    standardize: bool = True        # spatial head: standardise targets by their mean and std
    margin: float | None = None     # refiners' crop margin (crop="points"); None: REFINE_MARGIN
    anneal: float = 0.0             # extra epochs (fraction of the profile's), rate annealed to 0
    mirror_copies: bool = False     # region crops of every photo and of its mirror image
    #                                 (the jaw ResNet's target always has them: both halves)

    #: settings the manifest holds only when on (older models' manifests lack them)
    WRITTEN_WHEN_ON = ("mirror_copies",)

    def manifest(self):
        return {"name": self.name, "target": self.target, "input_size": self.input_size,
                "outputs": target_size(self.target), "stages": [list(s) for s in self.stages],
                "head": self.head, "loss": self.loss, "augment": self.augment.to_dict(),
                "precision": self.precision, "reduce_lr": self.reduce_lr, "crop": self.crop,
                "dense_layers": self.dense_layers, "optimizer": self.optimizer,
                "batch_size": self.batch_size, "standardize": self.standardize,
                "margin": self.margin, "anneal": self.anneal,
                **({"mirror_copies": True} if self.mirror_copies else {})}

    @property
    def learns_from_mirror_images(self):
        """Whether its training crops include every photo's mirror image (``mirror_copies``,
        and always the jaw ResNet's: both halves of every jaw)."""
        return self.mirror_copies or self.target == JAW_TARGET

    def anneal_epochs(self, epochs):
        """How many annealing epochs follow ``epochs`` (the profile's) for this model."""
        return int(round(self.anneal * epochs))


def model_specs(profile):
    """Every model of the paper's approaches for a profile."""
    p = get_profile(profile)
    specs = {"end_to_end": ModelSpec("end_to_end", "points", p.image_size, augment=FACE_AUGMENT),
             "boxes": ModelSpec("boxes", "boxes", p.image_size, augment=FACE_AUGMENT)}
    for region in REGIONS:
        augment = EYE_AUGMENT if "eye" in region else CENTRE_AUGMENT
        specs[f"region_{region}"] = ModelSpec(f"region_{region}", f"region:{region}",
                                              p.region_size, REGION_STAGES, augment=augment)
    ours = dict(head="integral", loss="l1", precision="mixed_bfloat16", reduce_lr=True,
                anneal=0.2)
    specs["cascade_stage1"] = ModelSpec("cascade_stage1", "points", p.image_size,
                                        augment=FACE_AUGMENT, **ours)
    for name, margin in REFINER_MARGINS.items():
        specs[name] = ModelSpec(name, "points", p.image_size, augment=REFINE_AUGMENT,
                                crop="points", margin=margin, **ours)
    for region, name in CASCADE_REGIONS.items():
        own = ours if p.cascade_own_regions else {}   # else notebook 03's model, as it is
        specs[name] = replace(specs[f"region_{region}"], name=name, **own)
    specs[JAW_MODEL] = ModelSpec(JAW_MODEL, JAW_TARGET, p.region_size, JAW_STAGES,
                                 augment=JAW_AUGMENT, **ours)
    if p.mirror_eyes and p.cascade_own_regions:  # a mirrored left eye is a right eye
        for region in ("right_eye", "left_eye"):
            specs[CASCADE_REGIONS[region]] = replace(specs[CASCADE_REGIONS[region]],
                                                     mirror_copies=True)
    if p.detector_augment:
        specs = {name: replace(spec, augment=DETECTOR_AUGMENT) if spec.augment == FACE_AUGMENT
                 else spec for name, spec in specs.items()}
    return specs


def mirroring_in_training(name, profile):
    """How model ``name``'s training mirrored faces (what leaves a mirror bias, see
    :mod:`mirror_bias`): ``"flipped"`` at random (its spec's flip probability > 0), ``"left
    halves"`` (the jaw ResNet: every face's left half, mirrored), ``"mirror images"`` (every
    photo and its mirror image: the release eye ResNets) or ``"not flipped"``."""
    spec = model_specs(profile)[name]
    if spec.target == JAW_TARGET:
        return "left halves"
    if spec.mirror_copies:
        return "mirror images"
    return "flipped" if spec.augment.flip > 0 else "not flipped"


#: Which models each approach needs.
APPROACH_MODELS = {
    "end_to_end": ("end_to_end",),
    "region": ("end_to_end",) + tuple(f"region_{r}" for r in REGIONS),
    "box": ("end_to_end", "boxes") + tuple(f"region_{r}" for r in REGIONS),
    "oracle": ("end_to_end",) + tuple(f"region_{r}" for r in REGIONS),
    "cascade": ("cascade_stage1",) + CASCADE_REFINERS + tuple(CASCADE_REGIONS.values())
               + (JAW_MODEL,),
}
CASCADE_STAGES = APPROACH_MODELS["cascade"][:1 + len(CASCADE_REFINERS)]


def cascade_models(stages=None):
    """The models our cascade runs with its first ``stages`` stages (None: all of them): those
    stages, then the region ResNets of the blend."""
    if stages is not None and not 1 <= stages <= len(CASCADE_STAGES):
        raise ValueError(f"the cascade has stages 1 to {len(CASCADE_STAGES)}; got stages={stages}")
    return CASCADE_STAGES[:stages] + APPROACH_MODELS["cascade"][len(CASCADE_STAGES):]


def model_selection(ids):
    """The fixed tenth of training ids that drives early stopping (see ``selection_mask``);
    tiny sets keep at least one image on each side."""
    mask = selection_mask(ids)
    if mask.all() or not mask.any():
        mask = np.zeros(len(ids), bool)
        mask[:: max(len(ids) // 10, 1)] = len(ids) > 1
    return mask


def _split_fit_select(ids, *arrays):
    mask = model_selection(ids)
    return tuple(a[~mask] for a in arrays), tuple(a[mask] for a in arrays), mask


def training_arrays(spec, data_dir, profile, seed=0):
    """(images, crop points) of the training split for a model, split into fit / selection."""
    p = get_profile(profile)
    if spec.target in ("points", "boxes"):
        faces = face_set(spec, data_dir, "train", p)
        return _split_fit_select(faces["ids"], faces["images"], faces["crop_points"])
    region = spec.target[7:]
    ids, images, shapes = load_originals(data_dir, "train")
    mask = model_selection(ids)
    fit_idx, sel_idx = np.flatnonzero(~mask), np.flatnonzero(mask)
    arrays = []
    for idx, copies, jitter in ((fit_idx, p.region_copies, REGION_JITTER), (sel_idx, 1, 0.0)):
        photos, points = [images[i] for i in idx], shapes[idx]
        if spec.learns_from_mirror_images:
            photos, points = with_mirrored(photos, points)
        crops, transforms, src, _ = crop_regions(photos, points, region, spec.input_size,
                                                 jitter, seed, copies)
        arrays.append((crops, to_crop(points[src], transforms)))
    return arrays[0], arrays[1], mask


def with_mirrored(photos, shapes):
    """The photos followed by their mirror images, and their 68-point shapes (N, 68, 2)
    followed by the mirrored shapes: the jaw ResNet's training faces (each half of each jaw
    once as a right half) and those of eye ResNets with ``mirror_copies`` (each eye once as
    a right eye, once as a left one)."""
    mirrored = [np.ascontiguousarray(photo[:, ::-1]) for photo in photos]
    flipped = [mirror_points(shape, photo.shape[1]) for photo, shape in zip(photos, shapes)]
    return list(photos) + mirrored, np.concatenate([shapes, np.reshape(flipped, (-1, 68, 2))])


def face_set(spec, data_dir, split, profile):
    """Cached face crops as a model expects them (official boxes, or the shape's own box)."""
    p = get_profile(profile)
    if spec.crop == "points":
        return load_faces(data_dir, split, spec.input_size, spec.margin or REFINE_MARGIN,
                          "bb_ground_truth")
    return load_faces(data_dir, split, spec.input_size, p.face_margin)


def models_folder(profile, data_dir, fingerprint=None):
    """``models/<profile>/<data folder name>-<data fingerprint>/``: trained models are kept per
    profile AND data set, so training on one data set never replaces another's models."""
    from .data import resolve_data_dir
    fingerprint = fingerprint or data_fingerprint(data_dir)
    name = resolve_data_dir(data_dir).name or "data"
    return paths.models_dir(get_profile(profile).name) / f"{name}-{fingerprint[:10]}"


def model_path(profile, name, data_dir, fingerprint=None):
    """Where the model ``name`` of a profile, trained on ``data_dir``, is kept (``.keras``)."""
    return models_folder(profile, data_dir, fingerprint) / f"{name}.keras"


def read_manifest(path):
    manifest = Path(path).with_suffix(".json")
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{manifest}: not a valid model manifest ({type(err).__name__}); "
                        f"retrain this model: fkd train --retrain {Path(path).stem}") from None


#: files kept beside a model: its manifest, training curves, best checkpoint, resume state
_MODEL_SIDE_FILES = (".json", ".history.csv", ".history.json", ".best.keras", ".backup")


def _adopt_unversioned(path, fingerprint):
    """Models trained before they were kept per data set lie in ``models/<profile>/``: move
    one into its data set's folder when its manifest says it was trained on this data."""
    old = path.parent.parent / path.name
    try:
        manifest = read_manifest(old)
    except DataError:
        return
    if not old.is_file() or (manifest or {}).get("data_fingerprint") != fingerprint:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    stem_old, stem_new = str(old.with_suffix("")), str(path.with_suffix(""))
    for suffix in _MODEL_SIDE_FILES:
        if os.path.lexists(stem_old + suffix) and not os.path.lexists(stem_new + suffix):
            os.replace(stem_old + suffix, stem_new + suffix)
    os.replace(old, path)


def check_model(model, spec, path):
    """A clear error when a stored model does not fit the spec (wrong kind or shape)."""
    want_in = (spec.input_size, spec.input_size, 3)
    want_out = target_size(spec.target)
    got_in, got_out = tuple(model.input_shape[1:]), model.output_shape[-1]
    if got_in != want_in or got_out != want_out:
        raise DataError(f"{path}: model takes {got_in} and gives {got_out} outputs, but "
                        f"{spec.name} needs {want_in} -> {want_out}; retrain or pick the "
                        "matching profile")


def has_shipped_model(profile, name):
    """Whether ``weights/<profile>/`` (e.g. the committed real-face weights) has model ``name``."""
    from .weights_io import shipped_weights_dir
    return (shipped_weights_dir(profile) / f"{name}.json").is_file()


def _shipped_model(profile, name):
    """A model exported to ``weights/<profile>/`` (e.g. the committed real-face weights)."""
    from .weights_io import import_model, read_weights_manifest, shipped_weights_dir
    if not has_shipped_model(profile, name):
        return None
    folder = shipped_weights_dir(profile)
    return import_model(folder, name, read_weights_manifest(folder))


def warm_start(model, weights, spec):
    """Copy the shipped model of the same name (``weights/<weights>/``) into a freshly built
    ``model``: the release profile trains the cpu profile's models further."""
    start = _shipped_model(weights, spec.name)
    if start is None:
        raise DataError(f"weights/{weights}/{spec.name}: no shipped model to start from")
    check_model(start, spec, f"weights/{weights}/{spec.name}")
    values = start.get_weights()
    shapes = [tuple(v.shape) for v in model.get_weights()]
    if shapes != [tuple(v.shape) for v in values]:
        raise DataError(f"weights/{weights}/{spec.name}: its layers differ from the model "
                        f"{spec.name} of this profile; cannot start from it")
    model.set_weights(values)


def retrain_hint(name):
    """How to retrain one model, for error messages: the command line and the API."""
    return (f"retrain this model alone: fkd train --retrain {name} (or fkd reproduce "
            f"--retrain; in Python retrain=['{name}'])")


def _check_stored(path, spec, fingerprint):
    """A stored model is reused only if its manifest says it was trained on this data with
    this spec (architecture, loss, augmentation...)."""
    manifest = read_manifest(path)
    if manifest is None:
        raise DataError(f"{path}: no manifest beside the model (interrupted save?); "
                        + retrain_hint(spec.name))
    if manifest.get("data_fingerprint") != fingerprint:
        raise DataError(f"{path}: trained on other data ({manifest.get('data_dir')}); "
                        + retrain_hint(spec.name))
    stored = {k: manifest.get(k) for k in spec.manifest()}
    wanted = json.loads(json.dumps(spec.manifest()))
    changed = [k for k in wanted if k in manifest and k not in ModelSpec.WRITTEN_WHEN_ON
               and stored[k] != wanted[k]]
    # a setting written only when on (mirror_copies) is off where a manifest lacks it
    changed = sorted(changed + [k for k in ModelSpec.WRITTEN_WHEN_ON
                                if manifest.get(k, False) != wanted.get(k, False)])
    if changed:
        raise DataError(f"{path}: trained with other settings ({', '.join(changed)}); "
                        + retrain_hint(spec.name))


def wants_retrain(retrain, name):
    """``retrain``: False, True (every model) or a collection of model names."""
    return bool(retrain) if isinstance(retrain, bool) or retrain is None else name in retrain


def _clear_training_state(path):
    """A deliberate retrain starts clean: no old backup, best checkpoint or curves."""
    import shutil
    stem = str(Path(path).with_suffix(""))
    shutil.rmtree(stem + ".backup", ignore_errors=True)
    for suffix in (".best.keras", ".history.csv", ".history.json"):
        Path(stem + suffix).unlink(missing_ok=True)


def get_model(name, profile, data_dir, retrain=False, verbose=1, seed=0, specs=None,
              epochs=None):
    """Load a trained model of this profile, or train it (and save it) when absent.

    Models are kept per profile and data set (:func:`models_folder`), and a stored model is
    reused only when its manifest's data fingerprint and spec match. ``retrain``: True, or a
    collection of model names to retrain (see :func:`wants_retrain`).
    """
    import keras
    p = get_profile(profile)
    if not p.cascade_own_regions and name in CASCADE_REGIONS.values() and specs is None:
        region = f"region_{next(r for r, n in CASCADE_REGIONS.items() if n == name)}"
        retrain = True if wants_retrain(retrain, name) else retrain
        return get_model(region, p, data_dir, retrain, verbose, seed, epochs=epochs)
    spec = (specs or model_specs(p))[name]
    retrain = wants_retrain(retrain, name)
    fingerprint = data_fingerprint(data_dir)
    path = model_path(p, name, data_dir, fingerprint)
    if not path.is_file():
        _adopt_unversioned(path, fingerprint)
    if p.name == "real" and not path.is_file() and not retrain:
        # the real profile evaluates the committed weights; it never trains silently
        shipped = _shipped_model(p.name, name)
        if shipped is None:
            raise DataError(f"weights/real/{name}: no shipped weights for this model; train it "
                            "with 'fkd train --profile cpu --data-dir DIR' (or --retrain)")
        check_model(shipped, spec, f"weights/{p.name}/{name}")
        return shipped
    if path.is_file() and not retrain:
        _check_stored(path, spec, fingerprint)
        model = keras.models.load_model(path, compile=False)
        check_model(model, spec, path)
        return model
    if retrain:
        _clear_training_state(path)
    fit, select, mask = training_arrays(spec, data_dir, p, seed)
    mean, std = target_stats(fit[1], spec.target)
    if not spec.standardize:  # raw pixels: an identity Normalization layer
        mean, std = np.zeros_like(mean), np.ones_like(std)
    epochs = epochs or p.epochs
    with data_parallel() as devices:
        batch, learning_rate, note = scaled_for(devices, spec.batch_size or p.batch_size,
                                                p.learning_rate)
        if note and verbose:
            print(f"{name}: {note}")
        model = build_resnet(spec.input_size, target_size(spec.target), spec.stages, spec.head,
                             spec.dense_layers, precision=spec.precision, target_mean=mean,
                             target_std=std, name=name)
        compile_model(model, spec.loss, learning_rate, spec.optimizer)
        # (a resumed run then restores its own later state over these)
        if p.warm_start and has_shipped_model(p.warm_start, name):
            warm_start(model, p.warm_start, spec)
        elif p.warm_start and verbose:   # a model new to the shipped folder, like the jaw ResNet
            print(f"{name}: weights/{p.warm_start} has no such model; training from scratch")
        history = fit_model(model, fit, select, path, epochs, batch, spec.target, spec.augment,
                            p.patience, seed, verbose, p.steps_per_epoch,
                            reduce_lr=spec.reduce_lr, anneal_epochs=spec.anneal_epochs(epochs))
    record = parallel_record(model, devices, batch, learning_rate, note)
    if len(devices) > 1:  # predict on one device: TensorFlow's mirrored model repeats each
        model = keras.models.load_model(path, compile=False)   # predicted batch per device
    manifest = {**spec.manifest(), "profile": p.name, "data_dir": str(Path(data_dir).resolve()),
                "data_fingerprint": fingerprint, "fit_images": int(len(fit[0])),
                "selection_images": int(len(select[0])), "seed": seed,
                "epochs_run": history["epochs_run"], "train_time_s": history["wall_time_s"],
                "best_val_loss": min(history.get("val_loss", [float("nan")])),
                # this run's epochs over this run's time (a resumed fit counts its own part)
                "train_images_per_s": round(len(fit[0]) * history["epochs_run"]
                                            / max(history["wall_time_s"], 1e-9), 1),
                **record}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=1))
    if history.get("stopped"):  # Ctrl-C as training ended: the model is saved, now stop
        raise KeyboardInterrupt
    return model


def parallel_record(model, devices, global_batch, learning_rate, note):
    """What the manifest says about how a model was trained: on which devices (read from
    where its weights live), how many in data parallel, the global batch and the (scaled)
    learning rate."""
    import keras
    return {"keras_backend": keras.backend.backend(), "data_parallel": len(devices),
            "devices": variable_devices(model), "global_batch_size": int(global_batch),
            "learning_rate": float(learning_rate), "scaling": note or "one device: no scaling"}


# ---------------------------------------------------------------- prediction, per approach


def predict_points(model, images, flip_average=False):
    """68 points (N, 68, 2) in crop pixels from uint8 crops; optionally averaged with the
    prediction on the mirrored crop (mapped back with the mirror permutation)."""
    images = np.asarray(images)
    if not flip_average:
        return predict_targets(model, images).reshape(-1, 68, 2)
    both = predict_targets(model, np.concatenate([images, images[:, :, ::-1]])).reshape(-1, 68, 2)
    return (both[: len(images)] + mirror_points(both[len(images):], images.shape[2])) / 2.0


def predict_faces(model, faces, flip_average=False):
    """Prediction on cached face crops -> 0-based image points (N, 68, 2)."""
    return from_crop(predict_points(model, faces["images"], flip_average), faces["transforms"])


def crop_faces_around(images, shapes, size, margin=REFINE_MARGIN):
    """Face crops around estimated shapes (0-based), like stage 2's training crops."""
    crops, transforms = [], []
    for image, shape in zip(images, shapes):
        crop, transform, _ = face_crop(image, points_box(pixels_to_pts(shape)), size, margin)
        crops.append(np.round(crop * 255).astype(np.uint8))
        transforms.append(transform)
    return np.stack(crops), np.stack(transforms)


def predict_cascade(models, faces, images, flip_average=False, stages=None, x_bias=None,
                    flip_regions=False):
    """Our coarse-to-fine regressor (notebook 08).

    Stage 1 reads the detector crop; each refiner (stages 2-3, margins in ``REFINER_MARGINS``)
    reads a crop placed around the mean of the stages before it; the stages' weighted mean
    (``STAGE_WEIGHTS``) is then
    blended (weight ``REGION_BLEND``) with our region ResNets placed around it (when ``models``
    has them). ``flip_average``: every stage's pass also on the mirrored crop;
    ``stages``: run only the first few stages (faster, less accurate; None: all);
    ``flip_regions``: each region also read mirrored (``refine_with_regions``' ``flip``;
    ``fkd predict --flip``).

    Each step was chosen on the held-out tenth of the real training images (model selection,
    never the measured splits), cpu profile, NME on 68 points. The earlier cascade (four
    stages, margins 0.2 / 0.3 / 0.4, integral heads; the paper's region ResNets at weight 0.25)
    scored 3.833 %; without its margin-0.2 stage 3.831 % (a quarter fewer passes, so dropped;
    spatial heads instead of integral ones: 4.27 %, a fifth stage: 3.830 %). Six annealing
    epochs after the 30 (``ModelSpec.anneal``): stages alone 4.07 / 4.13 / 4.12 % ->
    4.07 / 3.94 / 4.07 %, the blend 3.78 %. 32 x 32 heatmaps did not help (stage 2's selection
    loss 1.423 vs 1.405 px). Our region ResNets (the paper's, with our head, loss and schedule)
    beat the stages on their own points (alone 3.61 % vs the stages' mean 3.83 %), so they get
    more weight: 0.25: 3.65 %, 0.4: 3.58 %, 0.5: 3.55 %, 0.6: 3.531 %, 0.75: 3.532 % (the
    best weight per region, 0.75 for the eyes, 0.6 for nose and mouth, gains under 0.01). With
    ``stages=1`` 3.68 %, ``stages=2`` 3.55 %. Flip averaging: 3.52 %, for twice the compute, so
    it is off.

    Then our jaw ResNet (:func:`predict_jaw`, trained by the release profile from scratch)
    places the jaw again, blended in at ``JAW_BLEND``. Shipped weights, tenth from the 300-W
    boxes, Keras, mirror biases, no shape correction (``benchmarks/jaw_blend.py``): 2 stages
    3.317 % without it, 3.288 % at weight 0.25, 3.295 at 0.4, 3.311 at 0.5, 3.503 % with its
    points alone (the jaw's own error 6.13 -> 6.01 %, alone 6.87 %); 3 stages 3.309 -> 3.282 %
    at 0.25. End to end as ``fkd predict`` runs (own detector, corrections refitted): 2 stages
    int8 3.497 -> 3.459 %, 3 stages 3.460 -> 3.431 %.

    ``flip_regions`` (``fkd predict --flip``), each region read also from its mirrored crop
    with the mirrored reads' own biases: end to end on the tenth (Keras, the weights before the
    eye ResNets learned from mirror images) 2 stages 3.453 -> 3.430 %, 3 stages 3.431 ->
    3.406 %; every stage read mirrored as well bought nothing more (from the 300-W boxes, 3
    stages: 3.246 -> 3.250 %). The eye ResNets trained on mirror images too
    (``ModelSpec.mirror_copies``): 3.453 -> 3.439 % and 3.431 -> 3.419 %, with ``--flip`` 3.406
    -> 3.392 %.

    Returns ``(result, stages)``: 0-based image points (N, 68, 2) and each stage's shapes.
    """
    x_bias = x_bias or {}
    shapes = [shift_x(predict_faces(models["cascade_stage1"], faces, flip_average),
                      x_bias.get("cascade_stage1"))]
    for name in cascade_models(stages):
        if name in REFINER_MARGINS and name in models:
            around = np.mean(shapes, axis=0)
            crops, transforms = crop_faces_around(images, around, models[name].input_shape[1],
                                                  REFINER_MARGINS[name])
            shapes.append(shift_x(from_crop(predict_points(models[name], crops, flip_average),
                                            transforms), x_bias.get(name)))
    result = np.tensordot(STAGE_WEIGHTS[len(shapes)], shapes, axes=1)
    regions = {r: models.get(name) for r, name in CASCADE_REGIONS.items()}
    if all(regions.values()):
        size = next(iter(regions.values())).input_shape[1]
        refined, _ = refine_with_regions(result, images, region_squares(result), regions, size,
                                         region_biases(x_bias), flip=flip_regions)
        result = (1.0 - REGION_BLEND) * result + REGION_BLEND * refined  # the jaw stays
    if models.get(JAW_MODEL) is not None:
        result = blend_jaw(result, predict_jaw(models[JAW_MODEL], images, result,
                                               x_bias.get(JAW_MODEL)))
    return result, shapes


def region_biases(x_bias):
    """The cascade's biases by model name -> by region, as :func:`refine_with_regions` takes
    them (a region's mirrored read is done by the mirrored region's ResNet)."""
    plain = {r: x_bias.get(n) for r, n in CASCADE_REGIONS.items()}
    return plain | {mirrored(r): x_bias.get(mirrored(CASCADE_REGIONS[MIRRORED_REGION[r]]))
                    for r in REGIONS}


def blend_jaw(points, jaw, weight=JAW_BLEND):
    """``points`` (N, 68, 2) with their jaw moved ``weight`` of the way to ``jaw`` (N, 17, 2)
    (a new array)."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, list(JAW)] = (1.0 - weight) * out[:, list(JAW)] + weight * np.asarray(jaw)
    return out


def predict_jaw(model, images, shapes, x_bias=None):
    """Our jaw ResNet's 17 jaw points (N, 17, 2), 0-based image pixels: each half read from a
    crop placed around that half of ``shapes``, the left half's crop mirrored (the crop the
    mirrored photo would give: the model reads right halves), the chin (point 8, in both
    halves) averaged; moved right by ``x_bias`` px (:mod:`mirror_bias`)."""
    size = model.input_shape[1]
    shapes = np.asarray(shapes)
    right, right_t, _ = place_region_crops(images, squares_from_shapes(shapes, "jaw_half"), size)
    # the left half's square: a square around points does not change under the mirror, so
    # the renumbered shape gives it in this photo, which is never copied
    left, left_t, _ = place_region_crops(
        images, squares_from_shapes(shapes[:, list(MIRROR)], "jaw_half"), size)
    on_right = predict_targets(model, right).reshape(-1, len(JAW_HALF), 2)
    on_left = predict_mirrored(model, left, len(JAW_HALF))
    jaw = np.zeros((len(images), len(JAW), 2))
    jaw[:, list(JAW_HALF)] += from_crop(on_right, right_t)
    jaw[:, [MIRROR[k] for k in JAW_HALF]] += from_crop(on_left, left_t)
    jaw[:, JAW_HALF[-1]] /= 2.0   # the chin is in both halves
    return shift_x(jaw, x_bias)


def predict_boxes(model, faces):
    """Box regressor -> four region squares per face, as (centre (N, 4, 2), side (N, 4)),
    in 0-based image pixels."""
    out = predict_targets(model, faces["images"]).reshape(-1, 4, 2, 2)
    corners = from_crop(out.reshape(-1, 8, 2), faces["transforms"]).reshape(-1, 4, 4)
    return box_to_square(corners)


def place_region_crops(images, squares, region_size):
    """Crops (uint8) and transforms for squares (centres (N, 2), sides (N,)) of the images.

    A square that would leave its image is moved (and if needed shrunk) inside; the third
    return value counts them.
    """
    crops, transforms, clipped = [], [], 0
    for image, centre, side in zip(images, *squares):
        centre, side, moved = _inside(centre, side, image.shape)
        clipped += int(moved)
        transform = square_transform(centre, side, region_size)
        crops.append(np.round(crop_image(image, transform, region_size) * 255).astype(np.uint8))
        transforms.append(transform)
    return np.stack(crops), np.stack(transforms), clipped


def merge_region(shapes, region, crop_points, transforms):
    """Put one region's points, predicted in crop pixels, back into full shapes (in place)."""
    shapes[:, list(REGIONS[region])] = from_crop(crop_points, transforms)
    return shapes


def _inside(centre, side, shape):
    height, width = shape[:2]
    side = min(float(side), float(min(height, width)))
    lower = side / 2.0 - 0.5
    upper = np.array([width, height], float) - 0.5 - side / 2.0
    inside = np.clip(centre, lower, upper)
    return inside, side, bool(np.any(np.abs(inside - centre) > 1e-9))


def squares_from_shapes(shapes, region):
    """Region squares placed from full shapes the same way the training crops were."""
    pairs = [region_square(s, region, REGION_MARGIN) for s in shapes]
    return np.stack([c for c, _, _ in pairs]), np.array([side for _, side, _ in pairs])


def region_squares(shapes):
    """``{region: squares}`` of every region, placed from full shapes (N, 68, 2)."""
    return {r: squares_from_shapes(shapes, r) for r in REGIONS}


def used_region_boxes(squares_by_region, images):
    """The squares the region ResNets actually crop (moved inside their image as
    :func:`place_region_crops` does), as 1-based ``[x0, y0, x1, y1]`` boxes (N, 4, 4) in
    ``REGIONS`` order."""
    boxes = np.zeros((len(images), len(REGIONS), 4))
    for r, region in enumerate(REGIONS):
        for i, (image, centre, side) in enumerate(zip(images, *squares_by_region[region])):
            centre, side, _ = _inside(centre, side, image.shape)
            boxes[i, r] = np.concatenate([centre - side / 2, centre + side / 2]) + 1
    return boxes


def refine_with_regions(base, images, squares_by_region, region_models, region_size,
                        x_bias=None, flip=False):
    """Replace each region's points of ``base`` (N, 68, 2) by its region model's prediction
    (moved right by ``x_bias[region]`` px where given: see :mod:`mirror_bias`).

    ``flip``: average each region's points with those read from its mirrored crop by the
    ResNet of the mirrored region (``MIRRORED_REGION``), each read moved right by
    ``x_bias[mirrored(region)]`` (``mirror_bias.mirrored``: a mirrored read has a bias of its
    own)."""
    x_bias = x_bias or {}
    shapes = np.array(base, dtype=np.float64, copy=True)
    clipped = {}
    for region, crops, transforms, moved in region_crops(images, squares_by_region, region_size):
        clipped[region] = moved
        points = shift_x(read_region(region_models, region, crops, transforms), x_bias.get(region))
        if flip:
            read_back = read_region(region_models, region, crops, transforms, from_mirror=True)
            points = (points + shift_x(read_back, x_bias.get(mirrored(region)))) / 2.0
        shapes[:, list(REGIONS[region])] = points
    return shapes, clipped


def mirrored_reads(base, images, squares_by_region, region_models, region_size):
    """``base`` (N, 68, 2) with each region's points as its mirrored read alone gives them (no
    bias moved): what the mirrored reads' biases are measured on (:mod:`mirror_bias`)."""
    shapes = np.array(base, dtype=np.float64, copy=True)
    for region, crops, transforms, _ in region_crops(images, squares_by_region, region_size):
        shapes[:, list(REGIONS[region])] = read_region(region_models, region, crops,
                                                       transforms, from_mirror=True)
    return shapes


def region_crops(images, squares_by_region, region_size):
    """``(region, crops, transforms, clipped count)`` of every region in ``REGIONS`` order
    (:func:`place_region_crops`)."""
    for region in REGIONS:
        yield (region, *place_region_crops(images, squares_by_region[region], region_size))


#: The region ResNet that reads a region's mirrored crop: a mirrored right eye is a left eye.
MIRRORED_REGION = {"right_eye": "left_eye", "left_eye": "right_eye", "nose": "nose",
                   "mouth": "mouth"}


def read_region(region_models, region, crops, transforms, from_mirror=False):
    """One region's points (N, n, 2) in 0-based image pixels, ``REGIONS[region]`` order, from
    its crops: read by its own ResNet, or (``from_mirror``) by the mirrored region's ResNet from
    the mirrored crops, then mirrored back and renumbered."""
    if not from_mirror:
        return from_crop(predict_targets(region_models[region], crops).reshape(len(crops), -1, 2),
                         transforms)
    other = MIRRORED_REGION[region]
    points = predict_mirrored(region_models[other], crops, len(REGIONS[other]))
    order = [REGIONS[other].index(MIRROR[k]) for k in REGIONS[region]]
    return from_crop(points[:, order], transforms)


def predict_mirrored(model, crops, n_points):
    """``model``'s points (N, n_points, 2) read from the mirrored ``crops``, in the pixels of
    the unmirrored crops (x -> size - 1 - x), still numbered as the mirrored face's."""
    crops = np.asarray(crops)
    points = predict_targets(model, crops[:, :, ::-1]).reshape(len(crops), n_points, 2)
    points[..., 0] = crops.shape[2] - 1 - points[..., 0]
    return points


@dataclass
class Prediction:
    """Predictions of one approach on one split, in original-image ``.pts`` pixels."""
    approach: str
    split: str
    ids: np.ndarray
    points: np.ndarray          # (N, 68, 2), 1-based like the .pts files
    subsets: np.ndarray
    gt: np.ndarray              # (N, 68, 2), 1-based
    info: dict = field(default_factory=dict)
    #: The boxes the approach used, 1-based ``[x0, y0, x1, y1]`` like the box files:
    #: ``face_boxes`` (N, 4), the face crop's detector box; ``region_boxes`` (N, 4, 4), the
    #: squares its region ResNets cropped (``REGIONS`` order), for approaches 2, 3 and oracle.
    boxes: dict = field(default_factory=dict)

    def save(self, profile):
        path = paths.results_dir(get_profile(profile).name) / f"{self.approach}_{self.split}.npz"
        save_predictions(path, self.ids, self.points, subsets=self.subsets,
                         info=json.dumps(self.info), **self.boxes)
        return path


def save_predictions(path, ids, points, **extra):
    """Write a predictions file: ``ids`` (N,) and ``points`` (N, 68, 2) in ``.pts`` pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, ids=np.asarray(ids).astype(str), points=np.asarray(points, np.float64), **extra)
    os.replace(tmp, path)
    return path


def models_for(approaches):
    """Names of the models the given approaches need, in training order."""
    names = []
    for approach in approaches:
        if approach not in APPROACH_MODELS:
            raise ValueError(f"unknown approach {approach!r}; choose from {tuple(APPROACH_MODELS)}")
        names += [n for n in APPROACH_MODELS[approach] if n not in names]
    return names


def get_models(approaches, profile, data_dir, retrain=False, verbose=1, seed=0):
    """Load (or train) every model the approaches need: ``{name: keras.Model}``."""
    return {name: get_model(name, profile, data_dir, retrain, verbose, seed)
            for name in models_for(approaches)}


def stored_corrections(profile, data_dir):
    """The corrections (:class:`shape_correction.Corrections`) that go with the models a
    profile evaluates by default: the shipped folder's for ``real`` while it evaluates the
    shipped models (measured on their training faces when they were exported); none for
    profiles that train their own models (their points are used as the models give them;
    ``fkd train``'s export measures corrections for the exported folder) or for ``real``
    models trained here (``--retrain``)."""
    from .shape_correction import Corrections, folder_corrections
    from .weights_io import read_weights_manifest, shipped_weights_dir
    p = get_profile(profile)
    folder = shipped_weights_dir(p.name)
    if p.name != "real" or not (folder / "manifest.json").is_file():
        return Corrections()
    fingerprint = data_fingerprint(data_dir)
    trained_here = [n for n in APPROACH_MODELS["cascade"]
                    if model_path(p, n, data_dir, fingerprint).is_file()]
    return Corrections() if trained_here else folder_corrections(folder, read_weights_manifest(folder))


def run_approaches(profile, data_dir, split, models, approaches=APPROACHES, corrections=None):
    """Predictions of the chosen approaches on one split, as :class:`Prediction` objects.

    ``models`` maps model names (see :func:`model_specs`) to trained Keras models;
    ``corrections`` (:class:`shape_correction.Corrections`) those of our cascade's points
    (None: :func:`stored_corrections`).
    """
    p = get_profile(profile)
    specs = model_specs(p)
    faces = face_set(specs["end_to_end"], data_dir, split, p)
    ids, images, gt = load_originals(data_dir, split)
    if list(ids) != list(faces["ids"]):
        raise DataError(f"{data_dir}: cached faces and images disagree for split {split}")
    out = {}

    fallback_boxes = int(np.sum(faces["box_sources"] != "bb_detector"))

    def keep(name, shapes, regions=None, **info):
        # crops from the points' own box (no official box file) flatter results: say so
        info["face_boxes_from_points"] = fallback_boxes
        boxes = {"face_boxes": faces["boxes"]}
        if regions is not None:
            boxes["region_boxes"] = used_region_boxes(regions, images)
        out[name] = Prediction(name, split, faces["ids"], pixels_to_pts(shapes),
                               faces["subsets"], pixels_to_pts(gt), info, boxes)

    if "cascade" in approaches:
        if corrections is None:
            corrections = stored_corrections(p, data_dir)
        for name, stages in (("cascade", len(CASCADE_STAGES)), ("cascade_predict", PREDICT_STAGES)):
            points = predict_cascade(models, faces, images, stages=stages,
                                     x_bias=corrections.x_bias)[0]
            keep(name, corrected(points, corrections.for_stages(stages)),
                 **({"stages": stages} if name == "cascade_predict" else {}))
    paper = [a for a in approaches if a in APPROACHES]
    if not paper:
        return out
    end_to_end = predict_faces(models["end_to_end"], faces)
    if "end_to_end" in paper:
        keep("end_to_end", end_to_end)
    placements = {}
    if "region" in paper:
        placements["region"] = region_squares(end_to_end)
    if "box" in paper:
        centres, sides = predict_boxes(models["boxes"], faces)
        placements["box"] = {r: (centres[:, i], sides[:, i]) for i, r in enumerate(REGIONS)}
    if "oracle" in paper:
        placements["oracle"] = region_squares(gt)
    region_models = {r: models[f"region_{r}"] for r in REGIONS} if placements else {}
    for name, squares in placements.items():
        shapes, clipped = refine_with_regions(end_to_end, images, squares, region_models,
                                              p.region_size)
        keep(name, shapes, squares, clipped_region_crops=clipped)
    return out


def prediction_info(path):
    """The ``info`` a predictions file carries (:meth:`Prediction.save`: the setting it ran
    with), or {}."""
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["info"])) if "info" in npz.files else {}


def load_predictions(path, ids=None):
    """Read a predictions file; with ``ids``, check it covers exactly those samples.

    The one place a predictions file is checked: it must be an ``.npz`` with ``ids`` (unique)
    and numeric ``points`` (N, 68, 2). NaN or infinite points are kept: evaluation counts
    them as failures (see :mod:`fkd_utils.metrics`). Problems raise a :class:`DataError`
    naming the file.
    """
    import zipfile
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: predictions file not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a predictions .npz file (empty, truncated or another "
                        f"format: {type(err).__name__})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not a predictions .npz with 'ids' and "
                        "'points'")
    with npz:
        if "ids" not in npz.files or "points" not in npz.files:
            raise DataError(f"{path}: a predictions file needs 'ids' and 'points' arrays "
                            f"(has {sorted(npz.files)})")
        try:
            got_ids, points = npz["ids"], npz["points"]
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise DataError(f"{path}: damaged predictions file ({type(err).__name__})") from None
    if points.dtype.kind not in "fiu":
        raise DataError(f"{path}: points must be numbers, got dtype {points.dtype}")
    got_ids = got_ids.astype(str).ravel()
    if points.shape != (len(got_ids), 68, 2):
        raise DataError(f"{path}: points have shape {points.shape}, expected ({len(got_ids)}, 68, 2)")
    unique, counts = np.unique(got_ids, return_counts=True)
    if len(unique) != len(got_ids):
        dup = unique[counts > 1]
        raise DataError(f"{path}: duplicate ids ({len(dup)}, e.g. {dup[0]!r}): each image "
                        "must have one prediction")
    if ids is not None:
        order = {i: k for k, i in enumerate(got_ids)}
        missing = [i for i in ids if i not in order]
        extra = set(got_ids) - set(ids)
        if missing or extra:
            raise DataError(f"{path}: ids do not match the split ({len(missing)} missing, e.g. "
                            f"{missing[:2]}; {len(extra)} not in the split, e.g. {sorted(extra)[:2]})")
        points = points[[order[i] for i in ids]]
        got_ids = np.asarray(ids)
    return got_ids, points.astype(np.float64)


def load_boxes(path, ids):
    """The boxes saved with a predictions file (see :attr:`Prediction.boxes`), in the order of
    ``ids`` (which :func:`load_predictions` checks); files written before boxes were saved
    give an empty dict."""
    with np.load(Path(path), allow_pickle=False) as npz:
        order = {i: k for k, i in enumerate(npz["ids"].astype(str))}
        rows = [order[i] for i in ids]
        return {k: npz[k][rows] for k in ("face_boxes", "region_boxes") if k in npz.files}


def mean_shape_prediction(profile, data_dir, split):
    """The baseline every table carries: the training set's mean shape (in crop coordinates)
    placed in each face's detector box. A model near it has learned nothing yet."""
    p = get_profile(profile)
    spec = model_specs(p)["end_to_end"]
    mean = face_set(spec, data_dir, "train", p)["crop_points"].mean(axis=0)
    faces = face_set(spec, data_dir, split, p)
    shapes = from_crop(np.broadcast_to(mean, faces["crop_points"].shape), faces["transforms"])
    return Prediction("mean_shape", split, faces["ids"], pixels_to_pts(shapes), faces["subsets"],
                      pixels_to_pts(faces["points"]), boxes={"face_boxes": faces["boxes"]})


def predict_and_save(profile, data_dir, split, models, approaches):
    """Run approaches on a split, add the mean-shape row, save every prediction file.

    Returns ``{name: Prediction}`` with ``mean_shape`` first.
    """
    preds = {"mean_shape": mean_shape_prediction(profile, data_dir, split)}
    preds.update(run_approaches(profile, data_dir, split, models, approaches))
    for pred in preds.values():
        pred.save(profile)
    return preds


def load_saved(profile, data_dir, split, approaches=None):
    """Predictions saved by earlier notebooks for one split: ``{name: Prediction}``.

    Reads ``results/<profile>/<approach>_<split>.npz``, checks their ids against the split and
    attaches the ground truth. Missing approaches are left out.
    """
    from .data import ground_truth
    ids, subsets, gt = ground_truth(data_dir, split)
    from .report import ORDER
    found = {}
    folder = paths.results_dir(get_profile(profile).name)
    present = [f.name[: -len(f"_{split}.npz")] for f in folder.glob(f"*_{split}.npz")]
    rank = lambda n: ORDER.index(n) if n in ORDER else len(ORDER)
    for name in approaches or sorted(present, key=rank):
        path = folder / f"{name}_{split}.npz"
        if path.is_file():
            _, points = load_predictions(path, ids=list(ids))
            found[name] = Prediction(name, split, ids, points, subsets, gt, prediction_info(path))
    return found


def predict_split_per_image(data_dir, split, name, predict_one, info=None, samples=None):
    """Run ``predict_one(image, box) -> (shape (68, 2) 0-based, fell_back)`` on every image of
    a split (or on ``samples``, some of its images), given its 300-W detector box; returns a
    Prediction, counting fallbacks in ``info["fallbacks"]``. Used for dlib and for ``fkd
    predict`` end to end from the files."""
    from .data import split_samples
    from .io import read_image, read_pts
    from .preprocess import face_boxes
    samples = split_samples(data_dir, split) if samples is None else samples
    boxes, _ = face_boxes(samples, data_dir, "bb_detector")
    shapes, fallbacks = [], 0
    for sample, box in zip(samples, boxes):
        shape, fell_back = predict_one(read_image(sample.image_path), box)
        shapes.append(shape)
        fallbacks += bool(fell_back)
    return Prediction(name, split, np.array([s.id for s in samples]), pixels_to_pts(np.stack(shapes)),
                      np.array([s.subset for s in samples]),
                      np.stack([read_pts(s.pts_path) for s in samples]),
                      {**(info or {}), "fallbacks": int(fallbacks)})
