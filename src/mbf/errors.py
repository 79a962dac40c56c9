"""Errors raised for bad user input.

Every error that a user can cause (a missing file, a bad config key, a corrupt checkpoint)
is raised as an :class:`MBFError` carrying a message that names the file or key and what was
expected. The command-line entry points print that message and exit non-zero instead of a
traceback.
"""


class MBFError(Exception):
    """Base class of the errors the command line reports without a traceback."""


class ConfigError(MBFError):
    """A config file or a command-line override is invalid."""


class DatasetError(MBFError):
    """A dataset folder, split, file name or image is missing or unreadable."""


class CheckpointError(MBFError):
    """A weights file is missing, corrupt or belongs to another architecture."""


class UnsafeCheckpointError(CheckpointError):
    """The weights-only loader refused the file: it holds (or is damaged into) more than tensors and plain types."""

    needs: str | None = None  # the Python object the file asked for, when the loader named it


class InputError(MBFError):
    """Tensors or arrays handed to the API do not have the expected shape or values."""


class RunFolderError(MBFError):
    """An output folder holds another run, or a resume does not match the run it continues."""


class TrainingError(MBFError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""


class ExportError(MBFError):
    """An exported model does not reproduce the PyTorch model (or cannot be exported)."""


class OutputError(MBFError):
    """A file or folder cannot be written (no permission, a full disk); what was there is kept."""


class BusyError(OutputError):
    """Another process holds the lock of the folder or file this one would write."""
