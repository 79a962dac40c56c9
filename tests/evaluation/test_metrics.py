"""CMC / mAP, distances and re-ranking against the reference's golden outputs and its plain algorithms."""
import numpy as np
import pytest
import torch

from mbf.errors import InputError
from mbf.evaluation import (Evaluator, euclidean_distance, evaluate_features, evaluate_rank, evaluate_rank_reference,
                            re_ranking, re_ranking_reference)


def labels(gold):
    return gold["q_pids"], gold["g_pids"], gold["q_camids"], gold["g_camids"]


def test_distances_cmc_and_map_match_the_reference(golden):
    gold = golden("eval_metrics.pt")
    dist = euclidean_distance(gold["qf"], gold["gf"], chunk=97)  # blocks of an odd size
    torch.testing.assert_close(dist, gold["distmat"].to(dist.dtype), rtol=1e-5, atol=1e-5)
    cmc, mAP = evaluate_rank(gold["distmat"], *labels(gold))
    assert np.abs(cmc - np.asarray(gold["cmc"])).max() <= 1e-6
    assert abs(mAP - float(gold["mAP"])) <= 1e-6
    cmc2, mAP2 = evaluate_features(gold["qf"], gold["gf"], *labels(gold), chunk=64)
    assert np.abs(cmc2 - np.asarray(gold["cmc"])).max() <= 1e-6 and abs(mAP2 - float(gold["mAP"])) <= 1e-6


@pytest.mark.parametrize("k1,k2", [(20, 6), (50, 15)])
def test_re_ranking_matches_the_reference(golden, k1, k2):
    gold = golden("eval_metrics.pt")
    expected = gold[f"rerank_{k1}_{k2}"]
    dist = re_ranking(gold["qf"], gold["gf"], k1, k2, 0.3)
    assert (dist - torch.as_tensor(expected["distmat"]).to(dist.dtype)).abs().max() <= 1e-4
    cmc, mAP = evaluate_rank(dist, *labels(gold))
    assert np.abs(cmc - np.asarray(expected["cmc"])).max() <= 1e-6
    assert abs(mAP - float(expected["mAP"])) <= 1e-6


def test_re_ranking_equals_the_straightforward_algorithm_on_small_blocks():
    g = torch.Generator().manual_seed(0)
    qf = torch.nn.functional.normalize(torch.randn(23, 16, generator=g), dim=1)
    gf = torch.nn.functional.normalize(torch.randn(71, 16, generator=g), dim=1)
    fast = re_ranking(qf, gf, 9, 3, 0.3, block=17, chunk=5)
    slow = torch.as_tensor(re_ranking_reference(qf, gf, 9, 3, 0.3))
    assert (fast - slow.to(fast.dtype)).abs().max() <= 1e-5


def test_fast_ranking_equals_sorting_every_row_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(4):
        nq, ng = 40, 300
        dist = rng.integers(0, 25, (nq, ng)).astype(np.float32)  # many ties: broken by gallery index
        q_pids, g_pids = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
        q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
        fast = evaluate_rank(torch.from_numpy(dist), q_pids, g_pids, q_cams, g_cams, max_rank=20)
        slow = evaluate_rank_reference(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20)
        assert np.abs(fast[0] - slow[0]).max() <= 1e-9 and abs(fast[1] - slow[1]) <= 1e-9


def test_queries_without_a_match_are_skipped_and_none_at_all_is_an_error():
    dist = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    cmc, mAP = evaluate_rank(dist, [1, 9], [1, 2], [0, 0], [1, 1], max_rank=2)
    assert cmc.tolist() == [1.0, 1.0] and mAP == 1.0  # query 9 has no match and is skipped
    with pytest.raises(InputError, match="no query has a true match"):
        evaluate_rank(dist, [1, 2], [1, 2], [0, 1], [0, 1])  # the only matches share the camera
    with pytest.raises(InputError):
        evaluate_rank(dist, [1], [1, 2], [0, 0], [1, 1])


def test_evaluator_collects_batches_and_reports_bad_features():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(10, 8, generator=g)
    pids = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    cams = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    paths = [f"img{i}.jpg" for i in range(10)]
    ev = Evaluator(num_query=3, rerank=False)
    ev.update(feats[:4], pids[:4], cams[:4], paths[:4])
    ev.update(feats[4:], pids[4:], cams[4:], paths[4:])
    result = ev.compute()
    normed = torch.nn.functional.normalize(feats)
    cmc, mAP = evaluate_rank(euclidean_distance(normed[:3], normed[3:]), pids[:3], pids[3:], cams[:3], cams[3:])
    assert np.allclose(result.cmc, cmc) and result.mAP == pytest.approx(mAP)
    assert result.q_paths == paths[:3] and result.distmat.shape == (3, 7)
    ev.reset()
    bad = feats.clone()
    bad[5, 2] = float("nan")
    ev.update(bad, pids, cams, paths)
    with pytest.raises(InputError, match="img5.jpg"):
        ev.compute()
    with pytest.raises(InputError, match="4 pids"):
        ev.update(feats, pids[:4], cams, paths)
    with pytest.raises(InputError, match="empty"):
        Evaluator(num_query=3).compute()
    ev = Evaluator(num_query=10)
    ev.update(feats, pids, cams)
    with pytest.raises(InputError, match="one gallery image"):
        ev.compute()
