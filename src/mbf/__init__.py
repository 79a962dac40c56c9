"""MBF: mask-guided background augmentation and foreground extraction for occluded re-ID."""

from .errors import CheckpointError, ConfigError, DatasetError, InputError, MBFError, RunFolderError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "MBFError", "ConfigError", "DatasetError", "CheckpointError", "InputError", "RunFolderError", "TrainingError",
    "__version__",
]
