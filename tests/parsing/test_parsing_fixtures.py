"""The parser and every mask operation against the reference's golden outputs."""
import numpy as np
import torch
from yacs.config import CfgNode as CN

from mbf.parsing import (HumanParser, build_hrnet, erase_patches, load_parser_weights, patch_labels, postprocess,
                         postprocess_reference)


def fixture_parser(gold) -> HumanParser:
    width, height = gold["image_size"]
    parser = HumanParser(build_hrnet(CN(gold["extra"]), gold["num_classes"]), (height, width))
    load_parser_weights(parser.net, gold["checkpoint"])  # 'model.' prefix stripped, 'loss.*' ignored
    return parser


def test_hrnet_logits_match_the_reference(golden, rel_err):
    gold = golden("hrnet_parsing.pt")
    parser = fixture_parser(gold)
    width, height = gold["image_size"]
    x = torch.nn.functional.interpolate(gold["img"], size=(height, width), mode="bilinear", align_corners=False)
    assert rel_err(parser.logits(x), gold["logits_384x128"]) < 1e-4


def test_whole_parsing_step_gives_the_reference_part_masks(golden):
    gold = golden("hrnet_parsing.pt")
    masks = fixture_parser(gold)(gold["img"])
    assert masks.dtype == torch.int64
    assert torch.equal(masks.to(torch.uint8), gold["part_masks"])


def test_postprocessing_matches_the_reference(golden):
    gold = golden("mask_ops.pt")
    raw = gold["raw_parsing"]
    assert torch.equal(postprocess(raw), gold["postprocessed_parsing"])  # torch in, torch out
    assert np.array_equal(postprocess(raw.numpy()), gold["postprocessed_parsing"].numpy())
    assert np.array_equal(postprocess_reference(raw.numpy()), gold["postprocessed_parsing"].numpy())


def test_patch_labels_and_erased_windows_match_the_reference(golden):
    gold = golden("mask_ops.pt")
    rects = torch.tensor([r if r is not None else [-1, -1, -1, -1] for r in gold["erase_rects"]])
    for stride in (16, 11):
        labels = patch_labels(gold["pixel_labels"], num_parts=4, stride=stride)
        assert torch.equal(labels, gold[f"patch_labels_s{stride}"])
        erased = erase_patches(labels, rects, stride, image_size=tuple(gold["pixel_labels"].shape[-2:]))
        assert torch.equal(erased, gold[f"occ_mask_s{stride}"])
