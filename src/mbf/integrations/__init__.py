"""MBF inside other people's programs, without importing them.

- :mod:`.boxmot`: :class:`~.boxmot.BoxMOTReID`, the appearance model a BoxMOT tracker takes as
  ``reid_model=`` (``get_features(xyxys, img)`` and the staged methods BoxMOT times), built
  from a checkpoint or an ONNX file with one camera per instance (docs/TRACKING.md).

Nothing here imports the program it serves: BoxMOT is AGPL-3.0, and an MBF user who does not
track never installs it. The interfaces are followed from their documented behaviour and
checked by tests that run the real program where it is installed.
"""
