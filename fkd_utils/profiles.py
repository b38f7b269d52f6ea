"""Compute profiles: the one place that says how big and how long everything is.

Introduced in notebook 02. ``quick`` is for CI and first contact (embedded synthetic data,
48 px, 12 epochs, minutes for all notebooks on 2 CPU cores); ``cpu`` trains on real 300-W (or the
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
    # 12 epochs of 28 steps: approach 1 alone 12.4 %, the cascade's stage 1 after 8 epochs
    # 11.9 % (validation split). The ablation grids (notebooks 06 and 09: 35 trainings) get one
    # epoch each: two did not separate their variants either, and kept the run over 10 minutes.
    "quick": Profile("quick", image_size=48, region_size=24, epochs=12, batch_size=8,
                     patience=12, ablation_epochs=1, ablation_batch_sizes=(8, 32),
                     ablation_input_sizes=(32, 48),
                     description="CI and first contact: embedded synthetic data, 48 px, 12 epochs"),
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
