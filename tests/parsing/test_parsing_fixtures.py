"""The parser and every mask operation against the reference's golden outputs."""
import numpy as np
import torch
from yacs.config import CfgNode as CN

from mbf.config import get_cfg
from mbf.parsing import HumanParser, erase_patches, patch_labels, postprocess, postprocess_reference


def fixture_parser(gold, tmp_path) -> HumanParser:
    """Through the public entry point: config keys + a checkpoint file in the authors' format."""
    cfg = get_cfg()
    cfg.HUMAN_PARSING.EXTRA = CN(gold["extra"])  # includes STAGE1 with its NUM_RANCHES spelling
    cfg.HUMAN_PARSING.NUM_CLASSES = gold["num_classes"]
    cfg.HUMAN_PARSING.IMAGE_SIZE = list(gold["image_size"])
    path = tmp_path / "parser.pth"
    torch.save(gold["checkpoint"], path)  # 'model.' prefix and a 'loss.*' key
    cfg.HUMAN_PARSING.MODEL_FILE = str(path)
    return HumanParser.from_config(cfg)


def test_hrnet_logits_match_the_reference(golden, rel_err, tmp_path):
    gold = golden("hrnet_parsing.pt")
    parser = fixture_parser(gold, tmp_path)
    x = torch.nn.functional.interpolate(gold["img"], size=parser.input_size, mode="bilinear", align_corners=False)
    assert rel_err(parser.logits(x), gold["logits_384x128"]) < 1e-4


def test_whole_parsing_step_gives_the_reference_part_masks(golden, tmp_path):
    gold = golden("hrnet_parsing.pt")
    parser = fixture_parser(gold, tmp_path)
    masks = parser(gold["img"])
    assert masks.dtype == torch.int64 and masks.shape == gold["part_masks"].shape
    assert torch.equal(masks.to(torch.uint8), gold["part_masks"])
    # the cache's path (one network batch for images of any size) gives the same labels
    for mine, theirs in zip(parser.parse_each(list(gold["img"])), gold["part_masks"].numpy()):
        assert np.array_equal(mine, theirs)


def test_postprocessing_matches_the_reference(golden):
    gold = golden("mask_ops.pt")
    raw, expected = gold["raw_parsing"], gold["postprocessed_parsing"]
    assert torch.equal(postprocess(raw), expected)  # torch in, torch out
    assert np.array_equal(postprocess(raw.numpy()), expected.numpy())
    assert np.array_equal(postprocess_reference(raw.numpy()), expected.numpy())


def test_patch_labels_and_erased_windows_match_the_reference(golden):
    gold = golden("mask_ops.pt")
    pixels = gold["pixel_labels"]
    rects = torch.tensor([r if r is not None else [-1, -1, -1, -1] for r in gold["erase_rects"]])
    for stride in (16, 11):
        labels = patch_labels(pixels, num_parts=4, stride=stride)
        assert labels.dtype == torch.int64
        assert torch.equal(labels, gold[f"patch_labels_s{stride}"])
        expected = gold[f"occ_mask_s{stride}"]
        assert torch.equal(erase_patches(labels, rects, stride), expected)  # as the training step calls it
        assert torch.equal(erase_patches(labels, rects, stride, kernel=16, threshold=0.7,
                                         image_size=tuple(pixels.shape[-2:])), expected)
