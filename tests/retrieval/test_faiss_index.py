"""mbf index / FAISS search: exact search equals brute force; the compressed index finds the neighbours."""
import numpy as np
import pytest

from mbf.cli import main
from mbf.errors import InputError
from mbf.retrieval import Gallery
from mbf.retrieval.faiss_index import IvfPqParams, SearchIndex, build_index, rescore
from mbf.retrieval.gallery import NpyRows, exact_search

from .test_extract_search import last_table


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
    d_exact, i_exact = index.search(queries, 10, rerank=x, rerank_factor=30)
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


def test_default_parameters_visit_a_fixed_share_of_the_lists_as_the_gallery_grows():
    small, medium, large = (IvfPqParams.defaults(n, 6912) for n in (6000, 200_000, 1_000_000))
    assert (small.nlist, small.nprobe) == (77, 16)  # at least 16 lists
    assert (medium.nlist, medium.nprobe) == (447, 32)
    assert (large.nlist, large.nprobe, large.pca, large.m) == (1000, 64, 512, 32)  # docs/BENCHMARKS.md's million
    assert IvfPqParams.defaults(200_000, 6912, nprobe=8).nprobe == 8  # given: kept
    assert large.rerank_factor == 2 and large.k_factor == 16


def test_index_command_then_search_prints_the_gallery_results(tiny, capsys):
    weights = tiny.weights()
    paths = tiny.images("gallery", 6)
    assert tiny.extract(weights, tiny.tmp / "gallery", tiny.tmp / "g.npz") == 0
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx")]) == 0
    capsys.readouterr()
    tables = []
    for source in ("g.npz", "idx"):
        assert main(["search", "--gallery", str(tiny.tmp / source), "--query", paths[2], "--topk", "4"]) == 0
        tables.append(last_table(capsys.readouterr().out))
    assert [r[2] for r in tables[0]] == [r[2] for r in tables[1]] and tables[0][0][2] == paths[2]
    np.testing.assert_allclose([float(r[1]) for r in tables[0]], [float(r[1]) for r in tables[1]], atol=2e-4)
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["index", "--gallery", str(tiny.tmp / "g.npz"), "--out", str(tiny.tmp / "idx2"), "--kind", "ivfpq"]) == 2
    assert "--kind flat" in capsys.readouterr().err and not (tiny.tmp / "idx2").exists()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_gallery_rows_reads_exactly_the_rows_asked_for(tmp_path, dtype):
    x = clustered(300, 24).astype(dtype)
    np.save(tmp_path / "feats.npy", x)
    (tmp_path / "paths.txt").write_text("\n".join(f"img{i}.jpg" for i in range(len(x))))
    (tmp_path / "gallery.json").write_text("{}")
    rows = Gallery.load(tmp_path).rows()
    assert isinstance(rows, NpyRows) and rows.shape == x.shape
    wanted = np.array([0, 3, 4, 150, 299])
    np.testing.assert_array_equal(rows[wanted], x[wanted])
    assert rows[np.array([], dtype=np.int64)].shape == (0, 24)
    with pytest.raises(IndexError, match="300 rows"):
        rows[np.array([300])]
    in_memory = Gallery(x, [f"img{i}.jpg" for i in range(len(x))])
    assert in_memory.rows() is x  # an .npz gallery is already in memory
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    with pytest.raises(InputError, match="bad.npy"):
        NpyRows(tmp_path / "bad.npy")


def test_rescore_reads_each_candidate_once_and_keeps_missing_ones_last():
    x = clustered(200, 16)
    q = clustered(200, 16, seed=1)[:3]
    candidates = np.array([[5, 9, 0, -1], [1, 2, 3, 4], [9, 7, -1, -1]])

    class Counting:
        shape, reads = x.shape, []

        def __getitem__(self, rows):
            self.reads.append(np.asarray(rows))
            return x[rows]

    feats = Counting()
    dist, idx = rescore(q, candidates, feats, 3)
    np.testing.assert_array_equal(feats.reads, [[0, 1, 2, 3, 4, 5, 7, 9]])  # one sorted read per block
    for row, cand in enumerate(candidates):
        real = [c for c in cand if c >= 0]
        own = ((x[real] - q[row]) ** 2).sum(1)
        expect = [real[i] for i in np.argsort(own, kind="stable")][:3]
        assert list(idx[row][: len(expect)]) == expect
        np.testing.assert_allclose(dist[row][: len(expect)], np.sort(own)[:3], atol=1e-5)
    assert idx[2, 2] == -1 and np.isinf(dist[2, 2])  # only two real candidates


def test_search_rerank_on_an_ivfpq_index_prints_the_exact_results(tiny, capsys):
    weights = tiny.weights()
    paths = tiny.images("gallery", 6)
    assert tiny.extract(weights, tiny.tmp / "gallery", tiny.tmp / "g6") == 0
    small = Gallery.load(tiny.tmp / "g6")
    # the six real descriptors among 1,194 random ones: enough rows to train an ivfpq index
    big = tiny.tmp / "big"
    big.mkdir()
    filler = clustered(1194, small.dim, seed=3)
    np.save(big / "feats.npy", np.concatenate([np.asarray(small.feats), filler]).astype(np.float16))
    (big / "paths.txt").write_text("\n".join(small.paths + [f"filler{i}.jpg" for i in range(len(filler))]))
    (big / "gallery.json").write_text((tiny.tmp / "g6" / "gallery.json").read_text())
    assert main(["index", "--gallery", str(big), "--out", str(tiny.tmp / "idx"), "--kind", "ivfpq"]) == 0
    capsys.readouterr()
    tables = []
    for source, extra in (("big", []), ("idx", ["--rerank", "--rerank_factor", "5"])):
        assert main(["search", "--gallery", str(tiny.tmp / source), "--query", paths[3], "--topk", "3", *extra]) == 0
        tables.append(last_table(capsys.readouterr().out))
    assert tables[1][0][2] == paths[3] and [r[2] for r in tables[0]] == [r[2] for r in tables[1]]
    np.testing.assert_allclose([float(r[1]) for r in tables[0]], [float(r[1]) for r in tables[1]], atol=2e-4)


def test_a_projection_wider_than_its_sample_is_refused_before_training():
    with pytest.raises(InputError, match="--pca 1024 is more components than the 1000 descriptors"):
        IvfPqParams.defaults(1000, 2048, pca=1024)  # 1,000 rows give at most 1,000 principal components
    x = clustered(1200, 64)
    with pytest.raises(InputError, match="--pca 40 is more components than the 30 descriptors"):
        build_index(Gallery(x, [f"img{i}.jpg" for i in range(len(x))]), "ivfpq", pca=40, pca_sample=30)
    assert IvfPqParams.defaults(1000, 2048, pca=1000).pca == 1000


def test_index_command_refuses_an_unusable_output_before_building(tmp_path, monkeypatch, capsys):
    import mbf.retrieval.faiss_index as faiss_index
    from mbf.retrieval.gallery import write_npz

    x = clustered(20, 8)
    write_npz(tmp_path / "g.npz", x, [f"img{i}.jpg" for i in range(len(x))],
              {"config_file": "", "weights": "", "opts": [], "feat_norm": True})

    def never(*args, **kwargs):
        raise AssertionError("the index was built although it could not be saved")

    monkeypatch.setattr(faiss_index, "build_index", never)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("x")
    (tmp_path / "a_file").write_text("x")
    for out in ("foreign", "a_file"):
        for more, message in (([], "already exists"), (["--overwrite"], "exists and is not an mbf index folder")):
            assert main(["index", "--gallery", str(tmp_path / "g.npz"), "--out", str(tmp_path / out), *more]) == 2
            assert f"{out} {message}" in capsys.readouterr().err
    assert (tmp_path / "foreign" / "keep.txt").read_text() == "x" and (tmp_path / "a_file").read_text() == "x"


def test_search_rerank_on_a_flat_index_is_refused_not_ignored(tmp_path, capsys):
    from mbf.retrieval.gallery import write_npz

    x = clustered(20, 8)
    gallery = Gallery(x, [f"img{i}.jpg" for i in range(len(x))], config_file="c.yml", weights="w.pth",
                      source=str(tmp_path / "g.npz"))
    write_npz(tmp_path / "g.npz", x, gallery.paths, gallery.meta())
    build_index(gallery, "flat").save(tmp_path / "idx", gallery.paths)
    assert main(["search", "--gallery", str(tmp_path / "idx"), "--query", "q.jpg", "--rerank"]) == 2
    assert "--rerank applies to an ivfpq index" in capsys.readouterr().err
