"""Compute profiles: the one place that says how big and how long everything is.

Introduced in notebook 02. ``quick`` is for CI and first contact (embedded synthetic data,
48 px, 10 epochs, under ten minutes for all notebooks on 2 CPU cores); ``cpu`` trains on real 300-W (or the
full-size synthetic set) on 2 CPU cores, each model in well under an hour; ``full`` is the
paper's setting (224 px, 50 epochs) for a GPU; ``real`` evaluates the shipped real-face weights
on ``../shared/data/300w`` (or a user's copy) without retraining.
"""
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class Profile:
    name: str
    image_size: int            # face crop side fed to approach 1 and the box regressor
    region_size: int           # region crop side for approach 2's models
    epochs: int                # upper bound; EarlyStopping usually stops earlier
    batch_size: int = 16       # the paper's choice (Fig. 5c)
    learning_rate: float = 1e-3
    patience: int = 10         # EarlyStopping patience, epochs
    face_margin: float = 0.2   # crop margin around the face box, fraction of its side
    region_copies: int = 2     # jittered region crops per training face
    synthetic_counts: str = "default"   # embedded data: "default" (small) or "paper"
    ablation_epochs: int = 2
    ablation_batch_sizes: tuple = (16, 64, 256)
    ablation_input_sizes: tuple = (96, 128, 160, 224)   # notebook 09's input-size row
    our_ablations: tuple | None = None  # the settings notebook 09 runs (None: every one)
    cascade_own_regions: bool = True    # False: the cascade blends with notebook 03's regions
    warm_start: str | None = None   # start each model from these shipped weights (weights/<name>)
    detector_augment: bool = False  # face models: translation/scale matched to fkd's own boxes
    mirror_eyes: bool = False  # the cascade's eye ResNets also learn from the mirrored other eye
    steps_per_epoch: int | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)


PROFILES = {
    # Enough steps to learn on 218 faces within minutes. At 64 px and 2 epochs of batch 16 (28
    # steps) every paper approach stayed at the mean shape's error (20.4 vs 20.3 % NME), and the
    # cascade's first stage, its points still huddled near the crop's centre (the integral head
    # starts from flat heatmaps: after 28 steps its shapes were 0.47x the true size, 45.7 %),
    # gave the later stages crops around a too small shape, unlike any they were trained on: the
    # cascade ended worse than the mean shape (53 %). 48 px (0.56x the pixels) and batch 8 buy
    # epochs of 28 steps, and every approach learns; at 12 epochs the run took 13 min 16 s on
    # 2 cores (notebook 08's seven models 283 s, 09's twenty 201 s). Measured on the way down:
    # 8 epochs with one jittered crop per face for the region models (8 min 46 s) lost the
    # ordering (region 13.7 %, no better than end-to-end's 13.6 %); float32 instead of
    # bfloat16 and TensorFlow's graph optimiser off were both slower (stage 1 42.5 vs 33.3 s;
    # regions 23.5 vs 19 s). Kept: 10 epochs; notebook 09 runs two of its five settings (head
    # and loss, target standardisation; the full-budget one alone was four 12-epoch trainings,
    # 108 s); the cascade blends with notebook 03's region ResNets instead of training four of
    # its own (on a 12-epoch run's models: 5.41 % instead of 4.69 %, below the oracle's 6.09 %).
    # Result: 9 min 26 s; end-to-end 15.1 %, region 11.1, region + box 12.3, oracle 7.0,
    # cascade 6.5 (mean shape 20.3). Region and region + box trade places between runs at this
    # budget (TensorFlow's CPU kernels are not bitwise repeatable): 6.8 vs 7.7 % in one run,
    # 8.7 vs 8.1 % in another. Each training's fixed cost (about 5 s of graph tracing) is most
    # of a one-epoch ablation variant.
    "quick": Profile("quick", image_size=48, region_size=24, epochs=10, batch_size=8,
                     patience=10, ablation_epochs=1, ablation_batch_sizes=(8, 32),
                     ablation_input_sizes=(32, 48), cascade_own_regions=False,
                     our_ablations=("head and loss", "target standardisation"),
                     description="CI and first contact: embedded synthetic data, 48 px, 10 epochs"),
    "cpu": Profile("cpu", image_size=128, region_size=64, epochs=30, patience=6,
                   synthetic_counts="paper", ablation_epochs=5,
                   description="2 CPU cores: 128 px faces, 64 px regions, <= 30 epochs"),
    "full": Profile("full", image_size=224, region_size=96, epochs=50, patience=10,
                    synthetic_counts="paper", ablation_epochs=20,
                    ablation_batch_sizes=(16, 32, 64, 128, 256),
                    description="the paper's settings for a GPU: 224 px, 50 epochs"),
    "real": Profile("real", image_size=128, region_size=64, epochs=30, patience=6,
                    synthetic_counts="paper", ablation_epochs=5,
                    description="real 300-W: shipped weights, no retraining by default"),
    # The weights fkd predict ships: the cpu profile's models (trained on real 300-W, each
    # validation loss still falling at epoch 30) trained further from where they stopped, at a
    # lower rate, for many more epochs (several sessions in the background: every epoch is a
    # resume point), with the face models' translation and scale jitter widened to the spread
    # of fkd predict's own calibrated boxes around the 300-W boxes they are trained on
    # (benchmarks/detector_residuals.py). Same sizes as cpu: the same speed at prediction. A
    # model the shipped folder lacks (the jaw ResNet, when it was added) trains from scratch.
    "release": Profile("release", image_size=128, region_size=64, epochs=60, patience=15,
                       learning_rate=3e-4, synthetic_counts="paper", ablation_epochs=5,
                       warm_start="real", detector_augment=True, mirror_eyes=True,
                       description="shipped weights: the cpu models trained 60 epochs further "
                                   "on real 300-W, boxes jittered like fkd's own"),
}


def get_profile(name, **overrides):
    """A profile by name, optionally with fields replaced; a clear error for unknown names."""
    if isinstance(name, Profile):
        profile = name
    elif name in PROFILES:
        profile = PROFILES[name]
    else:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return replace(profile, **overrides) if overrides else profile
