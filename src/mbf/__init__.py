"""MBF: mask-guided background augmentation and foreground extraction for occluded re-ID."""

from .errors import (BusyError, CheckpointError, ConfigError, DatasetError, ExportError, InputError, MBFError,
                     OutputError, RunFolderError, TrainingError, UnsafeCheckpointError)

__version__ = "0.1.0"

__all__ = [
    "MBFError", "ConfigError", "DatasetError", "CheckpointError", "UnsafeCheckpointError", "InputError", "RunFolderError",
    "TrainingError", "ExportError", "OutputError", "BusyError", "Embedder", "__version__",
]


def __getattr__(name: str):
    if name == "Embedder":  # deferred on purpose: `import mbf` stays light; the embedder pulls in torch and the model
        from .retrieval import Embedder

        return Embedder
    raise AttributeError(f"module 'mbf' has no attribute {name!r}")
