"""The tiny synthetic run of tests/engine, for plug-ins registered from these test files."""
from ..engine.conftest import small_synthetic_root, tiny_cfg  # noqa: F401  (fixtures)
