"""Loss terms: golden values from the reference, triplet mining oracle, criterion sanity."""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from mbf.config import get_cfg
from mbf.errors import ConfigError, InputError
from mbf.losses import (
    LabelSmoothingCrossEntropy,
    ReIDLoss,
    TripletLoss,
    batch_hard_mining,
    build_criterion,
    pairwise_euclidean,
    segmentation_loss,
)
from mbf.losses.terms import build_reid_loss

SEED_OPTS = [
    "DATALOADER.SAMPLER", "softmax_triplet",
    "MODEL.METRIC_LOSS_TYPE", "triplet",
    "MODEL.IF_LABELSMOOTH", "off",
    "MODEL.NO_MARGIN", True,
]


def seed_cfg(*extra):
    cfg = get_cfg()
    cfg.merge_from_list(SEED_OPTS + list(extra))
    return cfg


def outputs_from_golden(data):
    """The reference's positional train outputs as MBFOutput-like namespaces."""
    scores, feats, probs, idx, sepa, patches = data["train_occ0"]
    holistic = SimpleNamespace(
        scores=scores, feats=feats, patch_probs=probs, salient_idx=idx[0], sepa_loss=sepa, patch_feats=patches,
        recovered_patches=None, decoder_scores=None, decoder_feats=None,
    )
    scores, feats, dscores, dfeats, probs, idx, sepa, recovered = data["train_occ1"]
    occluded = SimpleNamespace(
        scores=scores, feats=feats, patch_probs=probs, salient_idx=idx[0], sepa_loss=sepa, patch_feats=None,
        recovered_patches=recovered, decoder_scores=dscores, decoder_feats=dfeats,
    )
    return holistic, occluded


# ------------------------------------------------------------------ golden values
@pytest.mark.parametrize("name", ["mbf_reference_s16.pt", "mbf_reference_s11.pt"])
def test_losses_match_reference(golden, rel_err, name):
    data = golden(name)
    ref = data["losses"]
    target = data["target"]
    holistic, occluded = outputs_from_golden(data)
    seg_target = ref["seg_target"]

    criterion = build_criterion(seed_cfg(), num_classes=holistic.scores[0].shape[1])
    total, terms = criterion(holistic, occluded, target, seg_target, seg_target)

    checks = {
        "reid_holistic": ref["reid_holistic"],
        "reid_occluded": ref["reid_occluded"],
        "reid_decoder": ref["reid_decoder"],
        "seg_holistic": ref["seg_holistic"],
        "mse": ref["mse"],
        "sepa": ref["orth_sum"],
    }
    errors = {key: rel_err(terms[key].detach(), expected) for key, expected in checks.items()}
    assert all(err < 1e-5 for err in errors.values()), errors
    # the occluded segmentation term is the same function on the occluded probabilities
    assert rel_err(terms["seg_occluded"], segmentation_loss(occluded.patch_probs, seg_target)) < 1e-7
    assert set(terms) == set(checks) | {"seg_occluded"}
    assert torch.allclose(total, sum(terms.values()))


# ------------------------------------------------------------------ triplet
def brute_force_triplet(feats, labels, margin):
    n = len(labels)
    d = [[float(torch.linalg.vector_norm(feats[i] - feats[j])) for j in range(n)] for i in range(n)]
    losses, pos, neg = [], [], []
    for i in range(n):
        positives = [j for j in range(n) if labels[j] == labels[i]]
        negatives = [j for j in range(n) if labels[j] != labels[i]]
        p = max(positives, key=lambda j: d[i][j])
        pos.append(p)
        if not negatives:
            neg.append(None)
            continue
        q = min(negatives, key=lambda j: d[i][j])
        neg.append(q)
        gap = d[i][q] - d[i][p]
        losses.append(math.log1p(math.exp(-gap)) if margin is None else max(0.0, margin - gap))
    return sum(losses) / max(len(losses), 1), pos, neg


@pytest.mark.parametrize("margin", [None, 0.3])
@pytest.mark.parametrize("layout", [(4, 4), (3, 2), (5, 3)])
def test_batch_hard_triplet_matches_brute_force(margin, layout):
    gen = torch.Generator().manual_seed(7)
    P, K = layout
    labels = torch.arange(P).repeat_interleave(K)
    labels = labels[torch.randperm(len(labels), generator=gen)]
    feats = torch.randn(len(labels), 6, generator=gen, dtype=torch.float64)
    expected, pos, neg = brute_force_triplet(feats, labels.tolist(), margin)
    mined = batch_hard_mining(pairwise_euclidean(feats), labels)
    assert mined.pos_idx.tolist() == pos
    assert mined.neg_idx.tolist() == neg
    assert TripletLoss(margin)(feats, labels).item() == pytest.approx(expected, rel=1e-9)


def test_triplet_unbalanced_and_anchor_without_negatives():
    gen = torch.Generator().manual_seed(3)
    labels = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 2])
    feats = torch.randn(9, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    expected, _, _ = brute_force_triplet(feats.detach(), labels.tolist(), None)
    loss = TripletLoss()(feats, labels)
    # the lone image of identity 1 is its own hardest positive: sqrt(1e-12) instead of 0
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(feats.grad).all()
    # one identity only: nothing to contrast, zero loss and a finite (zero) gradient
    single = torch.randn(4, 5, generator=gen, requires_grad=True)
    loss = TripletLoss(0.3)(single, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(single.grad, torch.zeros_like(single))


def test_triplet_matches_torch_losses():
    gen = torch.Generator().manual_seed(5)
    labels = torch.arange(4).repeat_interleave(4)
    feats = torch.randn(16, 8, generator=gen)
    m = batch_hard_mining(pairwise_euclidean(feats), labels)
    ones = torch.ones(16)
    soft = torch.nn.SoftMarginLoss()(m.dist_an - m.dist_ap, ones)
    hinge = torch.nn.MarginRankingLoss(margin=0.3)(m.dist_an, m.dist_ap, ones)
    assert TripletLoss()(feats, labels).item() == pytest.approx(soft.item(), rel=1e-6)
    assert TripletLoss(0.3)(feats, labels).item() == pytest.approx(hinge.item(), rel=1e-6)


# ------------------------------------------------------------------ ID and segmentation terms
def test_label_smoothing_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=gen)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    smooth = (1 - 0.1) * F.one_hot(target, 5).float() + 0.1 / 5
    expected = (-smooth * F.log_softmax(logits, 1)).mean(0).sum()
    assert LabelSmoothingCrossEntropy(5)(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(InputError):
        LabelSmoothingCrossEntropy(4)(logits, target)


def test_segmentation_loss_matches_explicit_smoothed_labels():
    gen = torch.Generator().manual_seed(1)
    probs = torch.randn(3, 5, 4, 2, generator=gen).softmax(1)
    target = torch.randint(0, 5, (3, 4, 2), generator=gen)
    weights = torch.tensor([0.5, 1.0, 0.8, 0.8, 1.0])
    labels = torch.full((3, 5, 4, 2), 0.1 / 4).scatter(1, target[:, None], 0.9) * weights.view(1, 5, 1, 1)
    expected = (-F.log_softmax(probs, 1) * labels).sum() / (3 * 4 * 2)
    assert segmentation_loss(probs, target).item() == pytest.approx(expected.item(), rel=1e-6)
    # other smoothing / weights through the arguments
    labels = torch.full((3, 5, 4, 2), 0.2 / 4).scatter(1, target[:, None], 0.8)
    expected = (-F.log_softmax(probs, 1) * labels).sum() / (3 * 4 * 2)
    got = segmentation_loss(probs, target, epsilon=0.2, class_weights=[1.0] * 5)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(InputError):
        segmentation_loss(probs, target, class_weights=[1.0] * 4)
    with pytest.raises(InputError):
        segmentation_loss(probs, target[:, :2])


# ------------------------------------------------------------------ criterion on fake outputs
def fake_outputs(B=8, C=6, D=12, K=4, grid=(4, 2), requires_grad=True, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=gen).requires_grad_(requires_grad)

    P = grid[0] * grid[1]

    def branch(occluded):
        out = SimpleNamespace(
            scores=[t(B, C) for _ in range(K + 1)],
            feats=[t(B, D) for _ in range(K + 1)],
            patch_probs=t(B, K + 1, *grid).softmax(1),
            salient_idx=torch.zeros(B, 3, dtype=torch.long),
            sepa_loss=t(()).abs(),
            patch_feats=None if occluded else t(B, P, D),
            recovered_patches=t(B, P, D) if occluded else None,
            decoder_scores=[t(B, C) for _ in range(K)] if occluded else None,
            decoder_feats=[t(B, D) for _ in range(K)] if occluded else None,
        )
        return out

    target = torch.arange(B // 4).repeat_interleave(4)
    labels = torch.randint(0, K + 1, (B, *grid), generator=gen)
    return branch(False), branch(True), target, labels


def test_criterion_mbf_terms_and_structure():
    holistic, occluded, target, labels = fake_outputs()
    criterion = build_criterion(seed_cfg(), num_classes=6)
    total, terms = criterion(holistic, occluded, target, labels, labels)
    names = {"reid_holistic", "reid_occluded", "reid_decoder", "seg_holistic", "seg_occluded", "sepa", "mse"}
    assert set(terms) == names
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    assert torch.allclose(total, sum(terms.values()))

    tri = TripletLoss()
    ce = F.cross_entropy
    g = 0.5 * ce(holistic.scores[0], target) + 0.5 * torch.stack([ce(s, target) for s in holistic.scores[1:]]).mean()
    g = g + 0.5 * tri(holistic.feats[0], target)
    g = g + 0.5 * torch.stack([tri(f, target) for f in holistic.feats[1:]]).mean()
    assert terms["reid_holistic"].item() == pytest.approx(g.item(), rel=1e-6)
    d = 0.5 * torch.stack([ce(s, target) for s in occluded.decoder_scores]).mean()
    d = d + 0.5 * torch.stack([tri(f, target) for f in occluded.decoder_feats]).mean()
    assert terms["reid_decoder"].item() == pytest.approx(d.item(), rel=1e-6)
    assert terms["sepa"].item() == pytest.approx((holistic.sepa_loss + occluded.sepa_loss).item(), rel=1e-6)
    assert terms["mse"].item() == pytest.approx(F.mse_loss(holistic.patch_feats, occluded.recovered_patches).item())

    total.backward()
    leaves = itertools.chain(holistic.scores, holistic.feats, occluded.decoder_feats, [occluded.recovered_patches])
    for tensor in leaves:
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()

    with pytest.raises(InputError):
        criterion(holistic, occluded, target, None, labels)


def test_criterion_baseline_uses_global_terms_only():
    gen = torch.Generator().manual_seed(2)
    target = torch.arange(3).repeat_interleave(4)
    out = SimpleNamespace(scores=[torch.randn(12, 5, generator=gen)], feats=[torch.randn(12, 7, generator=gen)],
                          patch_probs=None, sepa_loss=None, patch_feats=None)
    criterion = build_criterion(seed_cfg(), num_classes=5)
    total, terms = criterion(out, None, target, None, None)
    assert list(terms) == ["reid_holistic"]
    expected = F.cross_entropy(out.scores[0], target) + TripletLoss()(out.feats[0], target)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_build_criterion_reads_config():
    holistic, occluded, target, labels = fake_outputs(requires_grad=False)
    base = build_criterion(seed_cfg(), 6)(holistic, None, target, labels)[1]["reid_holistic"]

    # loss weights scale the ID and triplet halves
    cfg = seed_cfg("MODEL.ID_LOSS_WEIGHT", 0.0, "MODEL.TRIPLET_LOSS_WEIGHT", 2.0)
    only_tri = build_criterion(cfg, 6)(holistic, None, target, labels)[1]["reid_holistic"]
    reid = ReIDLoss(triplet=TripletLoss())
    tri = reid(holistic.scores, holistic.feats, target) - ReIDLoss()(holistic.scores, holistic.feats, target)
    assert only_tri.item() == pytest.approx(2 * tri.item(), rel=1e-5)
    assert base.item() == pytest.approx(reid(holistic.scores, holistic.feats, target).item(), rel=1e-6)

    # margin triplet and label smoothing
    reid = build_reid_loss(seed_cfg("MODEL.NO_MARGIN", False, "SOLVER.MARGIN", 0.5, "MODEL.IF_LABELSMOOTH", "on"), 6)
    assert reid.triplet.margin == 0.5
    assert isinstance(reid.id_loss, LabelSmoothingCrossEntropy)

    # softmax sampler -> plain ID loss only, as the reference
    assert build_reid_loss(seed_cfg("DATALOADER.SAMPLER", "softmax"), 6).triplet is None

    # segmentation keys
    crit = build_criterion(seed_cfg("MODEL.SEG_EPSILON", 0.2, "MODEL.SEG_CLASS_WEIGHTS", [1.0] * 5), 6)
    got = crit(holistic, None, target, labels)[1]["seg_holistic"]
    assert got.item() == pytest.approx(segmentation_loss(holistic.patch_probs, labels, 0.2, [1.0] * 5).item())

    for bad in (["MODEL.IF_LABELSMOOTH", "maybe"], ["MODEL.METRIC_LOSS_TYPE", "center"],
                ["DATALOADER.SAMPLER", "random"], ["MODEL.SEG_EPSILON", 1.5]):
        with pytest.raises(ConfigError):
            build_criterion(seed_cfg(*bad), 6)


def test_the_criterion_is_the_weighted_sum_of_the_listed_terms():
    holistic, occluded, target, labels = fake_outputs(requires_grad=False)
    total, terms = build_criterion(seed_cfg(), 6)(holistic, None, target, labels)
    assert total.item() == pytest.approx(sum(v.item() for v in terms.values()), rel=1e-6)

    weighted = seed_cfg()
    weighted.MODEL.LOSS_WEIGHTS.SEG_HOLISTIC = 0.25
    total_w, terms_w = build_criterion(weighted, 6)(holistic, None, target, labels)
    assert terms_w.keys() == terms.keys()  # terms are reported unweighted
    expected = total.item() - 0.75 * terms["seg_holistic"].item()
    assert total_w.item() == pytest.approx(expected, rel=1e-6)

    fewer = seed_cfg()
    fewer.MODEL.LOSS_TERMS = ["reid_holistic"]
    assert list(build_criterion(fewer, 6)(holistic, None, target, labels)[1]) == ["reid_holistic"]
    for bad, match in ((["nope"], "MODEL.LOSS_TERMS 'nope' is not one of: .*mse"),
                       (["mse", "mse"], "more than once"), ([], "empty")):
        cfg = seed_cfg()
        cfg.MODEL.LOSS_TERMS = bad
        with pytest.raises(ConfigError, match=match):
            build_criterion(cfg, 6)
