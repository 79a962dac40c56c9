"""mbf index / FAISS search: exact search equals brute force; the compressed index finds the neighbours."""
import numpy as np
import pytest

from mbf.cli import main
from mbf.errors import InputError
from mbf.retrieval import Gallery
from mbf.retrieval.faiss_index import SearchIndex, build_index
from mbf.retrieval.gallery import exact_search


def clustered(n, dim, views=4, seed=0, normalise=True, rank=None):
    """Identities with several noisy views each, as re-ID descriptors are; with ``rank``, the
    identities and views vary in a ``rank``-dimensional subspace plus a little isotropic noise."""
    rng = np.random.default_rng(seed)  # the views; the identities and subspace are fixed
    basis = np.random.default_rng(99).standard_normal((rank or dim, dim)).astype(np.float32) / np.sqrt(rank or dim)
    centres = np.random.default_rng(98).standard_normal((n // views + 1, rank or dim)).astype(np.float32)
    z = centres[np.arange(n) // views] + 0.5 * rng.standard_normal((n, rank or dim)).astype(np.float32)
    x = z @ basis + (0.05 * rng.standard_normal((n, dim)).astype(np.float32) if rank else 0)
    return x / np.linalg.norm(x, axis=1, keepdims=True) if normalise else x


def brute_force(gallery, queries, k):
    d = ((queries[:, None, :].astype(np.float64) - gallery[None].astype(np.float64)) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


@pytest.mark.parametrize("normalise", [True, False], ids=["feat-norm", "raw"])
def test_flat_index_returns_the_brute_force_results(normalise):
    x = clustered(1500, 48, normalise=normalise)
    gallery = Gallery(x, [f"img{i}.jpg" for i in range(len(x))], feat_norm=normalise)
    queries = clustered(20, 48, seed=1, normalise=normalise)
    index = build_index(gallery, "flat", chunk=500)
    assert index.meta["metric"] == ("inner_product" if normalise else "l2")
    dist, idx = index.search(queries, 10)
    ref_d, ref_i = brute_force(x, queries, 10)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=1e-4, rtol=1e-4)
    # and the chunked brute force of `mbf search` on a gallery, with blocks smaller than the gallery
    d2, i2 = exact_search(gallery.chunks(400), queries, 10)
    np.testing.assert_array_equal(i2, ref_i)
    np.testing.assert_allclose(d2, ref_d, atol=1e-4, rtol=1e-4)


def test_ivfpq_index_finds_the_exact_neighbours_and_survives_a_round_trip(tmp_path):
    x = clustered(6000, 96, views=6, rank=32)
    gallery = Gallery(x, [f"img{i}.jpg" for i in range(len(x))], config_file="c.yml", weights="w.pth")
    queries = clustered(6000, 96, views=6, rank=32, seed=1)[::300]  # other views of gallery identities
    index = build_index(gallery, "ivfpq", pca=64, chunk=1000)
    assert index.meta["params"]["pca"] == 64 and index.ntotal == 6000
    _, exact = brute_force(x, queries, 10)
    _, approx = index.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact)])
    assert recall >= 0.9
    assert index.memory_bytes() < x.nbytes / 2  # compressed
    # re-scored from the full descriptors, the candidates give the exact neighbours and distances
    d_exact, i_exact = index.search(queries, 10, rerank=x, k_factor=30)
    recall_exact = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_exact, exact)])
    assert recall_exact > recall and recall_exact >= 0.95
    own = ((x[i_exact].astype(np.float64) - queries[:, None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(d_exact, own, atol=1e-4)  # exact distances of what was found
    assert (np.diff(d_exact, axis=1) >= 0).all()
    folder = index.save(tmp_path / "idx", gallery.paths)
    loaded = SearchIndex.load(folder)
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], approx)
    assert loaded.meta["gallery"]["weights"] == "w.pth" and loaded.paths == gallery.paths
    with pytest.raises(InputError, match="already exists"):
        index.save(folder, gallery.paths)
    with pytest.raises(InputError, match="96"):  # a query of another descriptor size
        loaded.search(np.zeros((1, 32), np.float32), 5)
    with pytest.raises(InputError, match="at least 1000"):
        build_index(Gallery(x[:50], gallery.paths[:50]), "ivfpq")


def test_index_command_then_search_prints_the_gallery_results(tiny, capsys):
    weights = tiny.weights()
    paths = tiny.images("gallery", 6)
    assert tiny.extract(weights, tiny.tmp / "gallery", tiny.tmp / "g.npz") == 0
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx")]) == 0
    capsys.readouterr()
    tables = []
    for source in ("g.npz", "idx"):
        assert main(["search", "--gallery", str(tiny.tmp / source), "--query", paths[2], "--topk", "4"]) == 0
        out = capsys.readouterr().out.splitlines()
        tables.append([line.split() for line in out[[line.split() for line in out].index(["rank", "distance", "path"]) + 1:]])
    assert [r[2] for r in tables[0]] == [r[2] for r in tables[1]] and tables[0][0][2] == paths[2]
    np.testing.assert_allclose([float(r[1]) for r in tables[0]], [float(r[1]) for r in tables[1]], atol=2e-4)
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx2"), "--kind", "ivfpq"]) == 2
    assert "--kind flat" in capsys.readouterr().err and not (tiny.tmp / "idx2").exists()
