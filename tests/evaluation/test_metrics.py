"""CMC / mAP, distances and re-ranking: the reference's golden outputs and the straightforward algorithms."""
import numpy as np
import pytest
import torch

from mbf.config import get_cfg
from mbf.errors import ConfigError, InputError
from mbf.evaluation import (Evaluator, euclidean_distance, evaluate_features, evaluate_rank, evaluate_rank_reference,
                            re_ranking, re_ranking_reference)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def labels(gold):
    return gold["q_pids"], gold["g_pids"], gold["q_camids"], gold["g_camids"]


def assert_metrics(actual, cmc, mAP):
    assert len(actual[0]) == len(np.asarray(cmc))
    assert np.abs(actual[0] - np.asarray(cmc)).max() <= 1e-6
    assert abs(actual[1] - float(mAP)) <= 1e-6


def clustered(nq, ng, dim, ids, seed):
    """Normalised features around identity centres, with identities and cameras."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, dim, generator=g)
    q_pids, g_pids = torch.randint(0, ids, (nq,), generator=g), torch.randint(0, ids, (ng,), generator=g)
    qf = torch.nn.functional.normalize(centres[q_pids] + 0.8 * torch.randn(nq, dim, generator=g), dim=1)
    gf = torch.nn.functional.normalize(centres[g_pids] + 0.8 * torch.randn(ng, dim, generator=g), dim=1)
    cams = torch.randint(0, 3, (nq + ng,), generator=g).numpy()
    return qf, gf, q_pids.numpy(), g_pids.numpy(), cams[:nq], cams[nq:]


# ------------------------------------------------------------------------- golden file


def test_distances_cmc_and_map_match_the_reference(golden):
    gold = golden("eval_metrics.pt")
    dist = euclidean_distance(gold["qf"], gold["gf"], chunk=97)  # blocks of an odd size
    torch.testing.assert_close(dist, torch.as_tensor(gold["distmat"]).to(dist.dtype), rtol=1e-5, atol=1e-5)
    assert_metrics(evaluate_rank(gold["distmat"], *labels(gold)), gold["cmc"], gold["mAP"])
    assert_metrics(evaluate_rank(dist, *labels(gold)), gold["cmc"], gold["mAP"])
    assert_metrics(evaluate_features(gold["qf"], gold["gf"], *labels(gold), chunk=64), gold["cmc"], gold["mAP"])
    ev = Evaluator(num_query=len(gold["qf"]), feat_norm=False)
    ev.update(gold["qf"], gold["q_pids"], gold["q_camids"])
    ev.update(gold["gf"], gold["g_pids"], gold["g_camids"])
    result = ev.compute()
    assert_metrics((result.cmc, result.mAP), gold["cmc"], gold["mAP"])


@pytest.mark.parametrize("k1,k2", [(20, 6), (50, 15)])
def test_re_ranking_matches_the_reference(golden, k1, k2):
    gold = golden("eval_metrics.pt")
    expected = gold[f"rerank_{k1}_{k2}"]
    dist = re_ranking(gold["qf"], gold["gf"], k1, k2, 0.3)
    assert dist.shape == tuple(np.shape(expected["distmat"])) and dist.dtype == torch.float32
    assert (dist - torch.as_tensor(expected["distmat"]).float()).abs().max() <= 1e-4
    assert_metrics(evaluate_rank(dist, *labels(gold)), expected["cmc"], expected["mAP"])
    # the same through the evaluator, set up from the config keys
    cfg = get_cfg()
    cfg.merge_from_list(["TEST.RE_RANKING", True, "TEST.RE_RANKING_K1", k1, "TEST.RE_RANKING_K2", k2,
                         "TEST.FEAT_NORM", "no"])
    ev = Evaluator.from_config(cfg, num_query=len(gold["qf"]))
    ev.update(torch.cat([gold["qf"], gold["gf"]]), np.concatenate([gold["q_pids"], gold["g_pids"]]),
              np.concatenate([gold["q_camids"], gold["g_camids"]]))
    result = ev.compute()
    assert (result.distmat - dist).abs().max() == 0
    assert_metrics((result.cmc, result.mAP), expected["cmc"], expected["mAP"])


# ------------------------------------------------------------------------- fast == straightforward


@pytest.mark.parametrize("k1,k2,lam,block,chunk", [(9, 3, 0.3, 17, 5), (6, 1, 0.0, 64, 7), (4, 8, 1.0, 40, 1000)])
def test_re_ranking_equals_the_straightforward_algorithm(k1, k2, lam, block, chunk):
    qf, gf, *_ = clustered(23, 71, 16, 12, seed=k1)
    fast = re_ranking(qf, gf, k1, k2, lam, block=block, chunk=chunk)
    slow = torch.as_tensor(re_ranking_reference(qf, gf, k1, k2, lam))
    assert fast.shape == (23, 71)
    assert (fast - slow).abs().max() <= 1e-6


def test_re_ranking_of_a_gallery_smaller_than_k():
    qf, gf, *_ = clustered(3, 5, 8, 2, seed=3)
    fast = re_ranking(qf, gf, 20, 6, 0.3)  # k1 + 1 > 8 items: every neighbour list is the whole set
    assert (fast - torch.as_tensor(re_ranking_reference(qf, gf, 20, 6, 0.3))).abs().max() <= 1e-6


def test_fast_ranking_equals_sorting_every_row_with_ties():
    rng = np.random.default_rng(1)
    for trial in range(4):
        nq, ng = 40, 300
        dist = rng.integers(0, 25, (nq, ng)).astype(np.float32)  # many ties: broken by gallery index
        q_pids, g_pids = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
        q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        args = (q_pids, g_pids, q_cams, g_cams)
        slow = evaluate_rank_reference(dist, *args, max_rank=20)
        for given in (dist, torch.from_numpy(dist), dist.astype(np.float64)):
            fast = evaluate_rank(given, *args, max_rank=20)
            assert np.array_equal(fast[0], slow[0]) and fast[1] == pytest.approx(slow[1], abs=1e-12)


def test_fast_ranking_equals_sorting_on_continuous_distances_and_blocks():
    qf, gf, q_pids, g_pids, q_cams, g_cams = clustered(150, 900, 12, 40, seed=5)
    dist = euclidean_distance(qf, gf)
    slow = evaluate_rank_reference(dist, q_pids, g_pids, q_cams, g_cams)
    fast = evaluate_rank(dist, torch.as_tensor(q_pids), torch.as_tensor(g_pids), q_cams, g_cams)
    assert np.array_equal(fast[0], slow[0]) and fast[1] == pytest.approx(slow[1], abs=1e-12)
    by_blocks = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, chunk=7)
    assert np.array_equal(by_blocks[0], slow[0]) and by_blocks[1] == pytest.approx(slow[1], abs=1e-12)


def test_cmc_is_cut_at_the_gallery_size():
    dist = np.array([[0.5, 0.6, 0.3]], dtype=np.float32)
    cmc, mAP = evaluate_rank(dist, [7], [1, 7, 7], [0], [1, 1, 0])  # one match at rank 2, one junk item
    assert cmc.tolist() == [0.0, 1.0, 1.0] and mAP == pytest.approx(0.5)
    assert np.array_equal(cmc, evaluate_rank_reference(dist, [7], [1, 7, 7], [0], [1, 1, 0])[0])


def test_distances_in_blocks_equal_one_product():
    qf, gf, *_ = clustered(50, 80, 32, 5, seed=0)
    whole = euclidean_distance(qf, gf, chunk=10_000)
    expected = (qf.double()[:, None] - gf.double()[None]).pow(2).sum(-1)
    assert torch.allclose(whole.double(), expected, atol=1e-5)
    assert torch.allclose(euclidean_distance(qf, gf, chunk=7), whole, atol=1e-6)  # BLAS may block differently
    assert torch.equal(euclidean_distance(qf.numpy(), gf.numpy()), whole)


# ------------------------------------------------------------------------- bad input


def test_queries_without_a_match_are_skipped_and_none_at_all_is_an_error():
    dist = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    cmc, mAP = evaluate_rank(dist, [1, 9], [1, 2], [0, 0], [1, 1], max_rank=2)
    assert cmc.tolist() == [1.0, 1.0] and mAP == 1.0  # query 9 has no match and is skipped
    with pytest.raises(InputError, match="no query has a true match"):
        evaluate_rank(dist, [1, 2], [1, 2], [0, 1], [0, 1])  # the only matches share the camera
    with pytest.raises(InputError, match="q_pids has 1 entries"):
        evaluate_rank(dist, [1], [1, 2], [0, 0], [1, 1])
    with pytest.raises(InputError, match="gallery is empty"):
        evaluate_rank(np.zeros((2, 0), np.float32), [1, 2], [], [0, 0], [])
    with pytest.raises(InputError, match="NaN"):
        evaluate_rank(np.array([[np.nan, 0.2], [0.3, 0.4]], np.float32), [1, 2], [1, 2], [0, 0], [1, 1])
    with pytest.raises(InputError, match="dims"):
        euclidean_distance(torch.zeros(2, 3), torch.zeros(4, 5))
    with pytest.raises(InputError, match="k1"):
        re_ranking(torch.zeros(2, 3), torch.zeros(4, 3), 0, 6, 0.3)


def test_evaluator_collects_batches_and_reports_bad_input():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(10, 8, generator=g)
    pids = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    cams = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    paths = [f"img{i}.jpg" for i in range(10)]
    ev = Evaluator(num_query=3)
    ev.update(feats[:4], torch.as_tensor(pids[:4]), cams[:4], paths[:4])
    ev.update(feats[4:], pids[4:], cams[4:], paths[4:])
    result = ev.compute()
    normed = torch.nn.functional.normalize(feats)
    cmc, mAP = evaluate_rank(euclidean_distance(normed[:3], normed[3:]), pids[:3], pids[3:], cams[:3], cams[3:])
    assert np.array_equal(result.cmc, cmc) and result.mAP == mAP and len(result.cmc) == 7
    assert result.q_paths == paths[:3] and result.g_paths == paths[3:] and result.distmat.shape == (3, 7)
    assert result.summary()["rank1"] == cmc[0] and list(result.g_pids) == list(pids[3:])

    ev.reset()
    bad = feats.clone()
    bad[5, 2] = float("nan")
    ev.update(bad, pids, cams, paths)
    with pytest.raises(InputError, match="img5.jpg"):
        ev.compute()
    with pytest.raises(InputError, match="4 pids"):
        ev.update(feats, pids[:4], cams, paths)
    with pytest.raises(InputError, match="paths"):
        ev.update(feats, pids, cams, paths[:3])
    with pytest.raises(InputError, match="16-d"):
        ev.update(torch.zeros(2, 16), [0, 1], [0, 0])
    with pytest.raises(InputError, match="gallery is empty"):
        Evaluator(num_query=3).compute()
    empty_query = Evaluator(num_query=0)
    empty_query.update(feats, pids, cams)
    with pytest.raises(InputError, match="query set is empty"):
        empty_query.compute()
    cfg = get_cfg()
    cfg.merge_from_list(["TEST.FEAT_NORM", "maybe"])
    with pytest.raises(ConfigError, match="TEST.FEAT_NORM"):
        Evaluator.from_config(cfg, 3)


@CUDA
def test_everything_runs_on_the_gpu_with_the_cpu_numbers():
    qf, gf, q_pids, g_pids, q_cams, g_cams = clustered(60, 300, 32, 20, seed=2)
    dist_gpu = euclidean_distance(qf.cuda(), gf.cuda(), chunk=16)
    assert dist_gpu.is_cuda and torch.allclose(dist_gpu.cpu(), euclidean_distance(qf, gf), atol=1e-5)
    cpu = evaluate_rank(dist_gpu.cpu(), q_pids, g_pids, q_cams, g_cams)
    gpu = evaluate_rank(dist_gpu, q_pids, g_pids, q_cams, g_cams)
    assert np.array_equal(cpu[0], gpu[0]) and cpu[1] == pytest.approx(gpu[1], abs=1e-12)
    rr = re_ranking(qf.cuda(), gf.cuda(), 20, 6, 0.3)
    assert rr.is_cuda and (rr.cpu() - re_ranking(qf, gf, 20, 6, 0.3)).abs().max() <= 1e-3  # float16 ulps at most
