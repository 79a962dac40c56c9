"""mbf.Embedder: crops (PIL, paths, arrays) -> descriptors, from a checkpoint and from ONNX."""
import numpy as np
import pytest
import torch
from PIL import Image

import mbf
from mbf.cli import main
from mbf.config import load_config
from mbf.data import build_test_transform
from mbf.errors import InputError
from mbf.modeling import build_model_from_checkpoint


@pytest.fixture
def setup(tiny):
    weights = tiny.weights()
    paths = tiny.images("crops", 5)
    onnx_path = tiny.tmp / "model.onnx"
    assert main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(onnx_path),
                 *tiny.opts]) == 0
    return weights, paths, str(onnx_path)


def reference(tiny, weights, pil_images, cams):
    """What the model gives for the test transform of the images, L2-normalised (TEST.FEAT_NORM 'yes')."""
    cfg = load_config(tiny.config, tiny.opts)
    model = build_model_from_checkpoint(cfg, weights).eval()
    batch = torch.stack([build_test_transform(cfg)(img) for img in pil_images])
    with torch.no_grad():
        return torch.nn.functional.normalize(model(batch, cam_label=torch.tensor(cams)), dim=1).numpy()


def test_checkpoint_embedder_gives_the_models_descriptors_for_pil_and_paths(tiny, setup):
    weights, paths, _ = setup
    emb = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, batch_size=2)  # batches of 2, 2, 1
    pil = [Image.open(p).convert("RGB") for p in paths]
    named_cams = [int(p.rsplit("/", 1)[1].split("_c")[1][0]) - 1 for p in paths]  # 0001_c2s1_... -> camera 1
    assert sorted(set(named_cams)) == [0, 1, 2]
    from_paths = emb.embed(paths)
    assert from_paths.shape == (5, 288) and from_paths.dtype == np.float32
    np.testing.assert_allclose(from_paths, reference(tiny, weights, pil, named_cams), atol=1e-5)
    # PIL images carry no camera: camera 0 (unknown_camera) unless given
    np.testing.assert_allclose(emb.embed(pil), reference(tiny, weights, pil, [0] * 5), atol=1e-5)
    np.testing.assert_allclose(emb.embed(pil, cameras=named_cams), from_paths, atol=1e-5)
    # uint8 arrays, RGB or BGR
    arrays = [np.asarray(img) for img in pil]
    np.testing.assert_allclose(emb.embed(arrays, cameras=named_cams), from_paths, atol=1e-5)
    np.testing.assert_allclose(emb.embed([a[..., ::-1] for a in arrays], cameras=named_cams, bgr=True), from_paths,
                               atol=1e-5)
    # another unknown-camera policy
    other = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, unknown_camera=2)
    np.testing.assert_allclose(other.embed(pil), reference(tiny, weights, pil, [2] * 5), atol=1e-5)


def test_onnx_embedder_matches_the_checkpoint_one(tiny, setup):
    weights, paths, onnx_path = setup
    from_onnx = mbf.Embedder.load(onnx_path, batch_size=3)
    from_ckpt = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts)
    assert from_onnx.dim == from_ckpt.dim == 288 and from_onnx.num_cameras == 3
    assert from_onnx.card.preprocessing == from_ckpt.card.preprocessing
    pil = [Image.open(p).convert("RGB") for p in paths]
    np.testing.assert_allclose(from_onnx.embed(paths), from_ckpt.embed(paths), atol=1e-4)
    np.testing.assert_allclose(from_onnx.embed(pil, cameras=[2, None, 0, 1, None]),
                               from_ckpt.embed(pil, cameras=[2, None, 0, 1, None]), atol=1e-4)
    # already-preprocessed batches go through embed_preprocessed, never through the transform again
    batch = torch.stack([from_onnx.transform(img) for img in pil])
    np.testing.assert_allclose(from_onnx.embed_preprocessed(batch, cameras=[0] * 5), from_onnx.embed(pil), atol=1e-5)


def test_embedder_refuses_what_it_cannot_embed_correctly(tiny, setup):
    weights, paths, onnx_path = setup
    emb = mbf.Embedder.load(onnx_path)
    with pytest.raises(InputError, match="float arrays are refused"):
        emb.embed([np.zeros((64, 32, 3), np.float32)])  # probably normalised already
    with pytest.raises(InputError, match="H x W x 3"):
        emb.embed([np.zeros((64, 32), np.uint8)])
    with pytest.raises(InputError, match="camera 3"):
        emb.embed(paths[:1], cameras=[3])
    with pytest.raises(InputError, match=r"float \[N, 3, 64, 32\]"):
        emb.embed_preprocessed(torch.zeros(2, 3, 128, 64))
    with pytest.raises(InputError, match="config"):
        mbf.Embedder.load(weights)
    with pytest.raises(InputError, match="not found"):
        mbf.Embedder.load(tiny.tmp / "missing.onnx")
    with pytest.raises(mbf.DatasetError, match="missing.jpg"):
        emb.embed([str(tiny.tmp / "missing.jpg")])
