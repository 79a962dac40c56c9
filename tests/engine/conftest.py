"""A very small synthetic dataset and a tiny MBF configuration for end-to-end training tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from mbf.config import load_config
from mbf.synthetic import DATASET_DIR_NAME, generate

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "configs" / "Synthetic" / "mbf_tiny.yml"

# 9 identities: 6 train x 4 images, 3 test identities; 2 cameras; 64x32 images
SMALL_SET = dict(num_ids=9, test_fraction=1 / 3, num_distractor_ids=1, num_cameras=2, height=64, width=32,
                 train_images_per_id=4, query_images_per_id=1, gallery_images_per_id=2,
                 distractor_images_per_id=1)


@pytest.fixture(scope="session")
def small_synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    generate(root / DATASET_DIR_NAME, seed=0, **SMALL_SET)
    return root


def tiny_overrides(root: Path, output_dir: Path, epochs: int = 1) -> list[str]:
    """KEY VALUE overrides that shrink configs/Synthetic/mbf_tiny.yml to seconds per epoch."""
    return [
        "MODEL.DEVICE", "cpu",
        "MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
        "MODEL.DECODER_FFN_DIM", "32", "MODEL.DROP_PATH", "0.0",
        "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "INPUT.PADDING", "2",
        "DATASETS.ROOT_DIR", str(root),  # moves the part-label masks too (HUMAN_PARSING.MASK_DIR is relative)
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.NUM_INSTANCE", "2",
        "SOLVER.IMS_PER_BATCH", "8", "SOLVER.MAX_EPOCHS", str(epochs), "SOLVER.WARMUP_EPOCHS", "1",
        "SOLVER.EVAL_PERIOD", "100", "SOLVER.CHECKPOINT_PERIOD", "100", "SOLVER.LOG_PERIOD", "1",
        "TEST.IMS_PER_BATCH", "16", "TEST.VISUALIZE", "True",
        "OUTPUT_DIR", str(output_dir),
    ]


@pytest.fixture
def tiny_opts(small_synthetic_root, tmp_path):
    """``tiny_opts(epochs, output)`` -> the override list (for subprocess runs of train.py)."""
    return lambda epochs=1, output="run": tiny_overrides(small_synthetic_root, tmp_path / output, epochs)


@pytest.fixture
def tiny_cfg(small_synthetic_root, tmp_path):
    """``tiny_cfg(epochs=1, extra=[...])`` -> a loaded config writing into its own folder."""

    def make(epochs: int = 1, extra: list[str] | None = None, output: str = "run"):
        opts = tiny_overrides(small_synthetic_root, tmp_path / output, epochs) + list(extra or [])
        return load_config(TINY_CONFIG, opts)

    return make


class Terminal:
    """A terminal's text as a stream (stdout and/or stderr): what the user sees, carriage returns included."""

    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return True

    def visible_lines(self) -> list[str]:
        """Each line as the terminal shows it: what follows its last carriage return."""
        return [line.rsplit("\r", 1)[-1] for line in self.text.split("\n")]


def interrupt_in_epoch(monkeypatch, stop: int, raising: type[BaseException] = KeyboardInterrupt) -> None:
    """Training raises ``raising`` when epoch ``stop`` begins (as Ctrl-C would), until monkeypatch.undo()."""
    import mbf.engine.trainer as trainer_module

    real = trainer_module.Trainer.train_epoch

    def train_epoch(self, epoch):
        if epoch == stop:
            raise raising
        return real(self, epoch)

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", train_epoch)
