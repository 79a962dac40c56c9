"""int8 ONNX (onnxruntime's dynamic quantisation) against the float32 export: agreement, mAP, speed.

    python benchmarks/int8.py --weights W --config configs/Synthetic/mbf_tiny.yml --data DATASET_ROOT \
        [--threads 1] [--batches 8,32] [--iters 5] [--json F]
    python benchmarks/int8.py --weights random --config configs/OCC_Duke/mbf.yml   # ViT-B: speed and agreement only

The model is exported as ``mbf export`` writes it (float32, parity-checked), then quantised by
``onnxruntime.quantization.quantize_dynamic`` (int8 weights of the MatMul / Gemm layers, int8
activations quantised at run time; ``--per-channel`` for per-channel weight scales). Both files
embed the synthetic set's query and gallery (``DATA/Synthetic_Occluded``, cameras and identities
from the names) through ``mbf.Embedder`` with ``--threads`` threads: R1 / mAP of each (the
market protocol, ``mbf.evaluation``), the cosine between the two descriptors of every image, and
the median time of ``--iters`` runs of one batch of each ``--batches`` size, float32 and int8
taking turns. Decides whether ``mbf export --int8`` is worth shipping: mAP within 1 point and
faster on this CPU (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def export_pair(weights: str, config: str, folder: Path, per_channel: bool) -> tuple[Path, Path]:
    """(float32, int8) ONNX files of the checkpoint, the int8 one carrying the float one's card."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mbf.config import load_config
    from mbf.retrieval.embedder import build_checkpoint_model
    from mbf.retrieval.export import export_onnx
    from mbf.retrieval.metadata import ModelCard

    if weights == "random":  # a randomly initialised model of the config (seed 0), for speed only
        from mbf.modeling import build_model

        cfg = load_config(config, ["MODEL.DEVICE", "cpu", "MODEL.PRETRAIN_CHOICE", "none", "MODEL.PRETRAIN_PATH", ""])
        torch.manual_seed(0)
        model = build_model(cfg, num_classes=702, camera_num=8, view_num=1, pretrained=False).eval()
    else:
        cfg = load_config(config, ["MODEL.DEVICE", "cpu"])
        model = build_checkpoint_model(cfg, weights).eval()
    fp32 = export_onnx(model, ModelCard.from_config(cfg, model), folder / "fp32.onnx").path
    int8 = folder / "int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel)
    source, target = onnx.load(str(fp32)), onnx.load(str(int8))
    del target.metadata_props[:]
    target.metadata_props.extend(source.metadata_props)
    onnx.save(target, str(int8))
    return fp32, int8


def labels(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from mbf.data.datasets.market import NAME_PATTERN

    matches = [NAME_PATTERN.match(Path(p).name) for p in paths]
    return np.array([int(m.group(1)) for m in matches]), np.array([int(m.group(2)) - 1 for m in matches])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--config", default=str(REPO / "configs" / "Synthetic" / "mbf_tiny.yml"))
    p.add_argument("--data", default="", help="DATASETS.ROOT_DIR of the synthetic set (none: speed and agreement "
                                               "on random images only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", default="8,32")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from mbf.evaluation import evaluate_features
    from mbf.retrieval import Embedder, list_images

    query = gallery = []
    if args.data:
        root = Path(args.data) / "Synthetic_Occluded"
        query, gallery = list_images(root / "query"), list_images(root / "bounding_box_test")
    result = {"weights": args.weights, "config": args.config, "threads": args.threads,
              "per_channel": args.per_channel, "queries": len(query), "gallery": len(gallery)}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = export_pair(args.weights, args.config, Path(tmp), args.per_channel)
        result["mib"] = {"float32": fp32.stat().st_size / 2**20, "int8": int8.stat().st_size / 2**20}
        models = {"float32": Embedder.from_onnx(fp32, threads=args.threads),
                  "int8": Embedder.from_onnx(int8, threads=args.threads)}
        feats = {}
        h, w = models["float32"].card.preprocessing.size
        for name, emb in models.items():
            if not args.data:  # agreement on random images
                feats[name] = emb.embed_preprocessed(torch.randn(32, 3, h, w, generator=torch.Generator().manual_seed(2)),
                                                     [0] * 32)
                continue
            qf, gf = emb.embed(query), emb.embed(gallery)
            feats[name] = np.concatenate([qf, gf])
            (q_pids, q_cams), (g_pids, g_cams) = labels(query), labels(gallery)
            cmc, mean_ap = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams)
            result[name] = {"rank1": float(cmc[0]), "mAP": float(mean_ap)}
        cos = (feats["float32"] * feats["int8"]).sum(1)  # L2-normalised (TEST.FEAT_NORM 'yes')
        result["cosine"] = {"min": float(cos.min()), "mean": float(cos.mean()), "p01": float(np.quantile(cos, 0.01))}
        for batch in (int(b) for b in args.batches.split(",")):
            images = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(batch))
            cams = [0] * batch
            times = {name: [] for name in models}
            for emb in models.values():
                emb.embed_preprocessed(images, cams)  # warm-up
            for _ in range(args.iters):
                for name, emb in models.items():
                    t = time.perf_counter()
                    emb.embed_preprocessed(images, cams)
                    times[name].append(time.perf_counter() - t)
            med = {name: statistics.median(ts) for name, ts in times.items()}
            result[f"batch{batch}"] = {"ms_per_image": {k: 1e3 * v / batch for k, v in med.items()},
                                       "int8_speedup": med["float32"] / med["int8"]}
    result["machine"] = f"{os.cpu_count()} CPUs, onnxruntime {__import__('onnxruntime').__version__}"
    print(json.dumps(result, indent=1))
    if args.data:
        d_map = (result["int8"]["mAP"] - result["float32"]["mAP"]) * 100
        print(f"mAP float32 {result['float32']['mAP'] * 100:.2f}, int8 {result['int8']['mAP'] * 100:.2f} "
              f"({d_map:+.2f} points)")
    print(f"cosine int8 vs float32: min {result['cosine']['min']:.4f}, mean {result['cosine']['mean']:.4f}; speed-up "
          + ", ".join(f"batch {k[5:]} {v['int8_speedup']:.2f}x" for k, v in result.items() if k.startswith("batch")))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
