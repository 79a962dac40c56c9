"""A planted pickle never runs: at every place the project reads a file, a file whose unpickling
would execute code is refused with one line, and the payload never ran."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from mbf.cli import main
from mbf.errors import MBFError

from .conftest import TINY_CONFIG


def refused(argv: list[str], capsys, bomb) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert not bomb.ran, f"the payload ran: {argv}"
    assert code == 2 and "error:" in err and "Traceback" not in err, err
    assert "weights_only=False" not in err and "trust the source" not in err  # no advice to bypass the safe loader
    return err


def train(opts: list[str], *extra: str) -> list[str]:
    return ["train", "--config_file", str(TINY_CONFIG), *opts, *extra]


def folder_of(opts: list[str]) -> Path:
    return Path(opts[opts.index("OUTPUT_DIR") + 1])


@pytest.mark.parametrize("wrap", [True, False], ids=["in-a-checkpoint-dict", "bare"])
def test_test_weight(tiny_opts, capsys, bomb, tmp_path, wrap):
    weights = bomb.torch_file(tmp_path / "transformer_1.pth", wrap=wrap)
    err = refused(["test", "--config_file", str(TINY_CONFIG), *tiny_opts(1), "TEST.WEIGHT", str(weights)], capsys, bomb)
    assert "was not loaded" in err and "only tensors and plain values" in err


@pytest.mark.parametrize("choice", ["imagenet", "self"])
def test_pretrain_path(tiny_opts, capsys, bomb, tmp_path, choice):
    weights = bomb.torch_file(tmp_path / "pretrained.pth")
    refused(train(tiny_opts(1), "MODEL.PRETRAIN_CHOICE", choice, "MODEL.PRETRAIN_PATH", str(weights)), capsys, bomb)


def test_parser_checkpoint(tiny_opts, capsys, bomb, tmp_path):
    weights = bomb.torch_file(tmp_path / "parser.pth")
    opts = tiny_opts(1) + ["HUMAN_PARSING.MODEL_FILE", str(weights), "HUMAN_PARSING.SOURCE", "hrnet"]
    refused(["parse", "--config_file", str(TINY_CONFIG), *opts], capsys, bomb)
    refused(train(opts), capsys, bomb)


@pytest.mark.parametrize("switches", [["--resume"], []], ids=["resume", "plain-train-into-the-folder"])
def test_last_pth(tiny_opts, capsys, bomb, switches):
    opts = tiny_opts(1, "planted")
    bomb.torch_file(folder_of(opts) / "last.pth")
    err = refused(train(opts, *switches), capsys, bomb)
    assert "do not load this file" in err if switches else "holds another run" in err


def test_weights_of_extract_export_and_the_embedder(tiny, capsys, bomb, tmp_path):
    from mbf import Embedder

    weights = bomb.torch_file(tmp_path / "model.pth")
    images = tiny.images("crops", n=2)
    refused(["extract", "--config_file", tiny.config, "--weights", str(weights), "--images", str(Path(images[0]).parent),
             "--out", str(tmp_path / "g.npz"), *tiny.opts], capsys, bomb)
    refused(["export", "--config_file", tiny.config, "--weights", str(weights), "--out", str(tmp_path / "m.onnx"),
             *tiny.opts], capsys, bomb)
    with pytest.raises(MBFError):
        Embedder.load(weights, config=tiny.config, opts=tiny.opts)
    assert not bomb.ran


@pytest.fixture
def gallery(tiny, tmp_path) -> tuple[Path, str]:
    """A folder gallery of two crops and a query image."""
    images = tiny.images("crops", n=2)
    assert tiny.extract(tiny.weights(), Path(images[0]).parent, tmp_path / "gallery") == 0
    return tmp_path / "gallery", images[0]


def object_array(bomb) -> np.ndarray:
    return np.array([bomb_object(bomb)], dtype=object)


def bomb_object(bomb):
    from .conftest import _Payload

    return _Payload(bomb.marker)


def test_galleries_and_indexes(gallery, tiny, capsys, bomb, tmp_path):
    folder, query = gallery
    search = ["search", "--query", query]
    # the query's model given on the command line
    weights = bomb.torch_file(tmp_path / "other.pth")
    refused([*search, "--gallery", str(folder), "--weights", str(weights), "--config_file", tiny.config, *tiny.opts],
            capsys, bomb)
    # a folder gallery whose descriptors are a pickled object array
    planted = tmp_path / "planted_gallery"
    shutil.copytree(folder, planted)
    np.save(planted / "feats.npy", object_array(bomb), allow_pickle=True)
    refused([*search, "--gallery", str(planted)], capsys, bomb)
    refused(["index", "--gallery", str(planted), "--out", str(tmp_path / "idx")], capsys, bomb)
    # an .npz gallery holding pickled arrays
    npz = tmp_path / "planted.npz"
    np.savez(npz, feats=object_array(bomb), paths=object_array(bomb))
    refused([*search, "--gallery", str(npz)], capsys, bomb)
    # an index folder whose projection is pickled
    assert main(["index", "--gallery", str(folder), "--out", str(tmp_path / "index")]) == 0
    np.savez(tmp_path / "index" / "pca.npz", mean=object_array(bomb), components=object_array(bomb))
    refused([*search, "--gallery", str(tmp_path / "index")], capsys, bomb)


def test_json_records_holding_a_pickle(gallery, tiny, capsys, bomb, tmp_path):
    """Galleries, indexes and extraction manifests are JSON: a pickle there is unreadable, never run."""
    folder, query = gallery
    payload = pickle.dumps(bomb_object(bomb))
    planted = tmp_path / "g2"
    shutil.copytree(folder, planted)
    (planted / "gallery.json").write_bytes(payload)
    refused(["search", "--query", query, "--gallery", str(planted)], capsys, bomb)
    assert main(["index", "--gallery", str(folder), "--out", str(tmp_path / "index")]) == 0
    (tmp_path / "index" / "index.json").write_bytes(payload)
    refused(["search", "--query", query, "--gallery", str(tmp_path / "index")], capsys, bomb)
    work = tmp_path / "resumed"
    (work / "parts").mkdir(parents=True)
    (work / "parts" / "manifest.json").write_bytes(payload)
    (work / "parts" / "shard-000000.npy").write_bytes(payload)
    refused(["extract", "--config_file", tiny.config, "--weights", tiny.weights(), "--images", str(Path(query).parent),
             "--out", str(work), *tiny.opts], capsys, bomb)


def test_synthetic_manifest_and_part_label_files(own_synthetic_root, tiny_opts, capsys, bomb):
    from mbf.synthetic import DATASET_DIR_NAME, MANIFEST_NAME, MASK_DIR, TRAIN_DIR

    payload = pickle.dumps(bomb_object(bomb))
    dataset = own_synthetic_root / DATASET_DIR_NAME
    opts = tiny_opts(1, "labels") + ["DATASETS.ROOT_DIR", str(own_synthetic_root)]
    for label in (dataset / MASK_DIR / TRAIN_DIR).iterdir():  # part-label PNGs (SOURCE files) that are pickles
        label.write_bytes(payload)
    refused(train(opts), capsys, bomb)
    (dataset / MANIFEST_NAME).write_bytes(payload)
    refused(train(opts), capsys, bomb)


def test_parse_cache_labels(small_synthetic_root, tiny_opts, capsys, bomb, tmp_path):
    from mbf.config import load_config
    from mbf.data.build import load_dataset
    from mbf.parsing import ParseCache

    parser_file = tmp_path / "parser.pth"
    parser_file.write_bytes(b"only its hash names the cache")
    opts = tiny_opts(1, "cached") + ["HUMAN_PARSING.SOURCE", "cache", "HUMAN_PARSING.MODEL_FILE", str(parser_file),
                                     "HUMAN_PARSING.CACHE_DIR", str(tmp_path / "cache")]
    cfg = load_config(TINY_CONFIG, opts)
    cache = ParseCache.from_config(cfg)
    cache.write_manifest()
    payload = pickle.dumps(bomb_object(bomb))
    for item in load_dataset(cfg).train:
        target = cache.path_for(item.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    assert json.loads((cache.folder / "parser.json").read_text())["checkpoint"] == str(parser_file)
    refused(train(opts), capsys, bomb)


def test_no_loader_in_the_package_can_unpickle():
    """The rule as code: every torch.load in src/ is weights-only, every np.load refuses pickles,
    and nothing calls pickle's loaders."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "mbf"
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)):
                continue
            owner, name = node.func.value.id, node.func.attr
            keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
            where = f"{path.relative_to(src)}:{node.lineno}"
            if owner == "torch" and name == "load":
                found.append((where, keywords.get("weights_only") is True))
            elif owner in ("np", "numpy") and name == "load":
                found.append((where, keywords.get("allow_pickle") is False))
            elif owner in ("pickle", "dill", "joblib") and name in ("load", "loads"):
                found.append((where, False))
    assert found, "the walk found no loader at all"
    assert [where for where, safe in found if not safe] == []
