"""Keypoint-aware augmentation in TensorFlow ops, for tf.data pipelines (notebook 01).

The paper augments with brightness, shear, horizontal flips and rotations (Sec. 5.2); we add
small scale and translation jitter, which also makes a model robust to the face detector's
box habits. Every geometric change is one affine map applied to the image (resampled with
``ImageProjectiveTransformV3``) and to the points, in 0-based pixel-centre coordinates. A flip
also renumbers the points with :data:`fkd_utils.markup.MIRROR`, so the subject's left eye
stays labelled as the left eye.

:func:`random_augment` draws all parameters from a stateless seed, so a pipeline is
deterministic under a seed yet different for every element and every epoch
(:func:`augment_dataset`).
"""
import math
from dataclasses import asdict, dataclass

import tensorflow as tf

from .markup import MIRROR


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 15.0        # max |angle|, degrees
    shear: float = 0.1            # max |shear| factor
    scale: float = 0.08           # log-scale std, clipped at 2 std
    translate: float = 0.05       # max shift, fraction of the side
    flip: float = 0.5             # probability of a horizontal flip
    brightness: float = 0.2       # max additive brightness change
    contrast: float = 0.25        # max relative contrast change

    def to_dict(self):
        return asdict(self)


NO_AUGMENT = AugmentConfig(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_MIRROR = tf.constant(MIRROR, dtype=tf.int32)


def _centered(matrix, size):
    """Affine (2, 3) ``matrix`` acting about the crop centre instead of the origin."""
    c = (tf.cast(size, tf.float32) - 1.0) / 2.0
    linear, shift = matrix[:, :2], matrix[:, 2]
    shift = shift + tf.stack([c, c]) - tf.linalg.matvec(linear, tf.stack([c, c]))
    return tf.concat([linear, shift[:, None]], axis=1)


def transform_points(points, matrix):
    """Apply a (2, 3) affine map to points (..., 68, 2)."""
    return tf.linalg.matvec(matrix[:, :2], points) + matrix[:, 2]


def warp_image(image, matrix, fill=0.0):
    """Resample a (H, W, C) image under the forward affine map ``matrix`` (bilinear)."""
    full = tf.concat([matrix, tf.constant([[0.0, 0.0, 1.0]])], axis=0)
    inverse = tf.linalg.inv(full)
    params = tf.concat([tf.reshape(inverse[:2], [6]), tf.zeros([2])], axis=0)
    shape = tf.shape(image)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=params[None], output_shape=shape[:2],
        fill_value=fill, interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def affine(image, points, matrix, flip=False):
    """Apply a forward affine map about the crop centre to an image and its points."""
    image = tf.cast(image, tf.float32)
    points = tf.cast(points, tf.float32)
    matrix = _centered(tf.cast(matrix, tf.float32), tf.shape(image)[1])
    new_points = transform_points(points, matrix)
    new_points = tf.cond(tf.convert_to_tensor(flip), lambda: tf.gather(new_points, _MIRROR),
                         lambda: new_points)
    return warp_image(image, matrix), new_points


def geometric_matrix(angle_deg=0.0, shear=0.0, scale=1.0, shift=(0.0, 0.0), flip=False):
    """The (2, 3) map: flip, then shear, rotation and scale, then shift (in pixels)."""
    a = tf.cast(angle_deg, tf.float32) * math.pi / 180.0
    flip_sign = tf.where(tf.convert_to_tensor(flip), -1.0, 1.0)
    rot = tf.stack([[tf.cos(a), -tf.sin(a)], [tf.sin(a), tf.cos(a)]])
    shear_m = tf.stack([[1.0, tf.cast(shear, tf.float32)], [0.0, 1.0]])
    linear = tf.cast(scale, tf.float32) * rot @ shear_m @ tf.stack([[flip_sign, 0.0], [0.0, 1.0]])
    return tf.concat([linear, tf.reshape(tf.cast(shift, tf.float32), [2, 1])], axis=1)


def flip(image, points):
    """Horizontal flip of an image and its points, with the mirror renumbering."""
    return affine(image, points, geometric_matrix(flip=True), flip=True)


def rotate(image, points, angle_deg):
    """Rotate an image and its points about the crop centre (degrees; positive angles turn
    clockwise on screen, since y points down)."""
    return affine(image, points, geometric_matrix(angle_deg=angle_deg))


def shear(image, points, factor):
    """Horizontal shear about the crop centre."""
    return affine(image, points, geometric_matrix(shear=factor))


def scale_shift(image, points, scale=1.0, shift=(0.0, 0.0)):
    """Zoom about the centre, then shift by ``shift`` pixels."""
    return affine(image, points, geometric_matrix(scale=scale, shift=shift))


def brightness_contrast(image, delta=0.0, contrast=1.0):
    """Photometric change: contrast about the image mean, then a brightness offset."""
    image = tf.cast(image, tf.float32)
    mean = tf.reduce_mean(image)
    return tf.clip_by_value((image - mean) * contrast + mean + delta, 0.0, 1.0)


def random_augment(image, points, seed, config=AugmentConfig()):
    """One random augmentation of (image (S, S, 3) float in [0, 1], points (68, 2)).

    ``seed`` is a shape-(2,) int tensor; the result is a pure function of it.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 7)
    uniform = lambda i, lim: tf.random.stateless_uniform([], seeds[i], -lim, lim)
    size = tf.cast(tf.shape(image)[1], tf.float32)
    do_flip = tf.random.stateless_uniform([], seeds[0]) < config.flip
    log_scale = tf.random.stateless_truncated_normal([], seeds[3]) * config.scale
    shift = tf.stack([uniform(4, config.translate), uniform(5, config.translate)]) * size
    matrix = geometric_matrix(uniform(1, config.rotation), uniform(2, config.shear),
                              tf.exp(log_scale), shift, do_flip)
    image, points = affine(image, points, matrix, flip=do_flip)
    photometric = tf.random.stateless_uniform([2], seeds[6], -1.0, 1.0)
    image = brightness_contrast(image, photometric[0] * config.brightness,
                                1.0 + photometric[1] * config.contrast)
    return image, points


def augment_dataset(dataset, seed=0, config=AugmentConfig()):
    """Map :func:`random_augment` over a dataset of (image, points) pairs, in parallel.

    Each element gets its own seed from a seeded random stream that is redrawn every epoch,
    so runs repeat exactly under the same seed while epochs differ.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda pair, s: random_augment(pair[0], pair[1], s, config),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

