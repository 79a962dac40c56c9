"""The Embedder's precision and network chunks on the CPU, as ratios within one run (docs/BENCHMARKS.md).

    python benchmarks/embed_precision.py [--batch 256] [--chunks 0,16,32,64,128] [--iters 3] [--threads 0]
    python benchmarks/embed_precision.py --tiny       # the tiny test model, a small batch: checks the script

The ViT-B MBF of configs/OCC_Duke/mbf.yml (256 x 128, stride 16, 8 cameras, 6,912-d descriptor;
random weights, nothing downloaded) embeds one batch of ``--batch`` preprocessed images through
``mbf.Embedder`` (``embed_preprocessed``: what ``mbf extract`` feeds the network per loader batch),
in float32 and in bfloat16 autocast (``precision='bfloat16'``, what ``TEST.AMP True`` gives), with
the batch fed to the network whole (chunk 0) or in chunks of each ``--chunks`` size (TEST.FORWARD_CHUNK).
The configurations take turns within each iteration; the median seconds per batch are
reported, with each row's speed relative to float32 fed whole, and the cosine between the
bfloat16 and float32 descriptors of the same images (L2-normalised, TEST.FEAT_NORM 'yes').
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def embedder(tiny: bool, precision: str, chunk: int, batch: int):
    """An Embedder of a randomly initialised model (seed 0), saved and loaded as a checkpoint would be."""
    import tempfile

    from mbf.config import load_config
    from mbf.modeling import build_model
    from mbf.retrieval import Embedder

    if tiny:
        config = str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml")
        opts = ["MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
                "MODEL.DECODER_FFN_DIM", "32", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]"]
        classes, cameras = 5, 3
    else:
        config = str(REPO / "configs" / "OCC_Duke" / "mbf.yml")
        opts, classes, cameras = ["MODEL.PRETRAIN_CHOICE", "none", "MODEL.PRETRAIN_PATH", ""], 702, 8
    opts += ["MODEL.DEVICE", "cpu"]
    cfg = load_config(config, opts)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=classes, camera_num=cameras, view_num=1, pretrained=False)
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(model.state_dict(), Path(tmp) / "w.pth")
        return Embedder.from_config(cfg, Path(tmp) / "w.pth", batch_size=batch, threads=torch.get_num_threads(),
                                    precision=precision, chunk=chunk)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--chunks", default="0,16,32,64,128", help="network chunk sizes (0: the whole batch)")
    p.add_argument("--precisions", default="float32,bfloat16")
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the CPUs this process may use)")
    p.add_argument("--tiny", action="store_true", help="the tiny test model and a batch of 8 (a check of the script)")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    from mbf.runtime import set_threads

    threads = set_threads(args.threads)
    batch = 8 if args.tiny else args.batch
    chunks = [int(c) for c in args.chunks.split(",")]
    precisions = args.precisions.split(",")
    runs = {(prec, chunk): embedder(args.tiny, prec, chunk, batch) for prec in precisions for chunk in chunks}
    first = next(iter(runs.values()))
    h, w = first.card.preprocessing.size
    images = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(1))
    cams = [i % max(first.num_cameras, 1) for i in range(batch)]
    outputs = {key: emb.embed_preprocessed(images, cams) for key, emb in runs.items()}  # warm-up, and the outputs
    times = {key: [] for key in runs}
    for _ in range(args.iters):
        for key, emb in runs.items():
            t = time.perf_counter()
            emb.embed_preprocessed(images, cams)
            times[key].append(time.perf_counter() - t)
    base = statistics.median(times[(precisions[0], chunks[0])])
    reference = outputs[(precisions[0], chunks[0])]
    rows = []
    for (prec, chunk), ts in times.items():
        med = statistics.median(ts)
        cos = (outputs[(prec, chunk)] * reference).sum(1)
        rows.append({"precision": prec, "chunk": chunk, "seconds": ts, "median_s": med, "images_per_s": batch / med,
                     "speedup": base / med, "cos_to_float32_min": float(cos.min()),
                     "cos_to_float32_mean": float(cos.mean())})
    print(f"batch {batch}, {threads} threads, {'tiny model' if args.tiny else 'ViT-B MBF 256x128'}; "
          f"reference: {precisions[0]}, chunk {chunks[0] or 'whole'}")
    print("| precision | chunk | s per batch (median) | images/s | speed vs float32 whole | cosine to float32 (min / mean) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['precision']} | {r['chunk'] or 'whole'} | {r['median_s']:.3f} | {r['images_per_s']:.2f} | "
              f"{r['speedup']:.2f}x | {r['cos_to_float32_min']:.5f} / {r['cos_to_float32_mean']:.5f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"batch": batch, "threads": threads, "tiny": args.tiny, "rows": rows,
                                               "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}"},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
