"""The Embedder runs in the precision it says (TEST.AMP honoured), in network chunks, with the threads asked for."""
import numpy as np
import pytest
import torch

import mbf
from mbf.errors import InputError


@pytest.fixture
def weights(tiny):
    return tiny.weights()


def crops(n=5):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (70, 30, 3), dtype=np.uint8) for _ in range(n)]


def test_float32_unless_test_amp_asks_for_bfloat16_autocast(tiny, weights):
    plain = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts)
    amp = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts + ["TEST.AMP", "True"])
    assert plain.precision == "float32" and amp.precision == "bfloat16"
    assert "bfloat16" in amp.describe() and "float32" in plain.describe()
    a, b = plain.embed(crops()), amp.embed(crops())
    assert b.dtype == np.float32
    assert np.abs(a - b).max() > 0  # autocast ran
    assert (a * b).sum(1).min() > 0.99  # and agrees with float32 (L2-normalised descriptors)
    # an explicit precision overrides the config
    explicit = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, precision="bfloat16")
    np.testing.assert_allclose(explicit.embed(crops()), b, atol=1e-6)


def test_a_precision_the_device_cannot_run_is_refused(tiny, weights):
    with pytest.raises(InputError, match="float16 autocast is not available on the cpu"):
        mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, precision="float16")
    with pytest.raises(InputError, match="precision must be one of float32, bfloat16, float16"):
        mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, precision="int4")


def test_chunks_of_the_batch_give_the_descriptors_of_the_whole_batch(tiny, weights):
    whole = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, batch_size=5, chunk=0)
    assert whole.chunk == 0
    by_two = mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts + ["TEST.FORWARD_CHUNK", "2"], batch_size=5)
    assert by_two.chunk == 2
    calls = []
    run = by_two._run
    by_two._run = lambda images, cams: calls.append(len(images)) or run(images, cams)
    np.testing.assert_allclose(by_two.embed(crops()), whole.embed(crops()), atol=1e-5)
    assert calls == [2, 2, 1]
    with pytest.raises(InputError, match="chunk must be at least 1"):
        mbf.Embedder.load(weights, config=tiny.config, opts=tiny.opts, chunk=-1)


def test_every_constructor_takes_threads(tiny, weights):
    before = torch.get_num_threads()
    try:
        emb = mbf.Embedder.from_checkpoint(tiny.config, weights, tiny.opts, threads=1)
        assert emb.threads == 1 and torch.get_num_threads() == 1
        onnx_path = tiny.tmp / "m.onnx"
        assert mbf.cli.main(["export", "--config_file", tiny.config, "--weights", weights, "--out", str(onnx_path),
                             *tiny.opts]) == 0
        assert mbf.Embedder.from_onnx(onnx_path, threads=1).threads == 1
        assert mbf.Embedder.load(onnx_path, threads=2).threads == 2
    finally:
        torch.set_num_threads(before)


def test_extract_runs_and_records_the_precision_of_test_amp(tiny, weights):
    import json

    tiny.images("gallery", 4)
    images = tiny.tmp / "gallery"
    assert tiny.extract(weights, images, tiny.tmp / "fp32") == 0
    assert tiny.extract(weights, images, tiny.tmp / "bf16", extra=["TEST.AMP", "True"]) == 0
    meta = {name: json.loads((tiny.tmp / name / "gallery.json").read_text()) for name in ("fp32", "bf16")}
    assert meta["fp32"]["precision"] == "float32" and meta["bf16"]["precision"] == "bfloat16"
    a, b = (np.load(tiny.tmp / name / "feats.npy") for name in ("fp32", "bf16"))
    assert np.abs(a - b).max() > 0 and (a * b).sum(1).min() > 0.99
