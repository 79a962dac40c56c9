import numpy as np
import torch
from PIL import Image

from mbf.evaluation import plot_part_masks, plot_retrieval


def test_retrieval_and_part_mask_pictures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(8):
        p = tmp_path / f"{i:04d}_c1.jpg"
        Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    dist = torch.rand(2, 6)
    out = plot_retrieval(tmp_path / "r.png", paths[:2], paths[2:], dist, [1, 2], [1, 2, 3, 1, 2, 3], [0, 0],
                         [1, 1, 1, 1, 1, 1], num_queries=2, topk=4)
    assert out.is_file() and Image.open(out).size[0] > 100
    out = plot_part_masks(tmp_path / "m.png", torch.rand(3, 3, 32, 16), torch.randint(0, 5, (3, 8, 4)),
                          titles=["a", "b", "c"])
    assert out.is_file()
