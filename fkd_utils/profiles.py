"""Compute profiles: the one place that says how big and how long everything is.

Introduced in notebook 02. ``quick`` is for CI and first contact (embedded synthetic data,
64 px, a few minutes for all notebooks on 2 CPU cores); ``cpu`` trains on real 300-W (or the
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
    "quick": Profile("quick", image_size=64, region_size=32, epochs=2, patience=2,
                     ablation_epochs=1, ablation_batch_sizes=(16, 64),
                     ablation_input_sizes=(48, 64, 96),
                     description="CI and first contact: embedded synthetic data, 64 px, 2 epochs"),
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
