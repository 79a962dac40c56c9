"""Inference throughput of the MBF test descriptor (ViT-B, 256x128, stride 16 and 11; with
--families, one row per backbone family at 256x128: ImageNet ViT-B/16, CLIP ViT-B/16, DINOv2
ViT-B/14 (stride 12: 14-pixel patches side by side do not tile 256 x 128), LUPerson ViT-B/16+ICS).

Reports images/s in float32 and, on CUDA, under bf16/fp16 autocast; the model's FLOPs per
image (torch.utils.flop_counter) and an estimate for the reference's structure (K full
part-block passes per branch instead of the shared keys/values); the measured float32
matrix-product rate of the same machine and the fraction of it the model achieves; and the
speed ratio of the fused attention kernel against explicit softmax(QK^T)V attention.

    python benchmarks/inference.py                       # batch 64, both strides
    python benchmarks/inference.py --batch 8 --iters 2   # quick CPU run
    python benchmarks/inference.py --device cuda --json gpu.json
    python benchmarks/inference.py --families --batch 8 --iters 2 --no-explicit   # the family rows
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mbf.config import get_cfg
from mbf.modeling import build_backbone, build_model
from mbf.modeling.vit import Attention

DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
BUILTIN = "vit_base_patch16_224_MBF"
# --families: (MODEL.TRANSFORMER_TYPE, stride) of each family's row at 256 x 128
FAMILY_ROWS = [(BUILTIN, 16), ("vit_base_patch16_clip_quickgelu", 16), ("vit_base_patch14_dinov2", 12),
               ("vit_base_patch16_ics_luperson", 16)]


def make_model(stride: int, size=(256, 128), num_classes=702, cameras=8, kind: str = BUILTIN):
    cfg = get_cfg()
    cfg.merge_from_list([
        "MODEL.NAME", "transformer", "MODEL.TRANSFORMER_TYPE", kind,
        "MODEL.PRETRAIN_CHOICE", "none", "MODEL.STRIDE_SIZE", [stride, stride],
        "MODEL.SIE_CAMERA", True, "MODEL.EFFECTIVE_RADIO", 0.4, "MODEL.NUM_DECODER_LAYER", 3,
        "INPUT.SIZE_TRAIN", list(size), "INPUT.SIZE_TEST", list(size),
    ])
    probe = cfg.clone()  # the family's own input normalisation (a tiny build), so no mean/std warning
    probe.merge_from_list(["MODEL.VIT_EMBED_DIM", 32, "MODEL.VIT_DEPTH", 2, "MODEL.VIT_NUM_HEADS", 2])
    backbone = build_backbone(probe, cameras, 1)
    if backbone.pixel_mean is not None:
        cfg.merge_from_list(["INPUT.PIXEL_MEAN", list(backbone.pixel_mean), "INPUT.PIXEL_STD", list(backbone.pixel_std)])
    return build_model(cfg, num_classes, cameras, 1).eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """Times eval forwards of one batch; throughput is the median over timed iterations
    (robust to other jobs on a shared machine)."""

    def __init__(self, model, device, batch: int, amp_dtype=None):
        h, w = model.backbone.img_size
        self.model, self.device, self.batch, self.amp_dtype = model, device, batch, amp_dtype
        self.img = torch.randn(batch, 3, h, w, device=device)
        self.cams = torch.arange(batch, device=device) % max(model.backbone.num_cameras, 1)

    def once(self) -> float:
        autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            _sync(self.device)
            start = time.perf_counter()
            self.model(self.img, cam_label=self.cams)
            _sync(self.device)
        return time.perf_counter() - start

    def images_per_second(self, times: list[float]) -> float:
        return self.batch / statistics.median(times)


def count_flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def model_flops(model) -> dict:
    """FLOPs per image of our descriptor, and of the reference's structure (estimate)."""
    model.requires_grad_(False)  # FlopCounterMode's module hooks trip over no_grad regions otherwise
    h, w = model.backbone.img_size
    img, cams = torch.randn(1, 3, h, w), torch.zeros(1, dtype=torch.long)
    ours = count_flops(lambda: model(img, cam_label=cams))
    sep, P, D, K = model.separator, model.backbone.num_patches, model.backbone.embed_dim, model.num_parts
    token, patches = torch.randn(2, D), torch.randn(2, P, D)
    masks = torch.ones(2, K, P, dtype=torch.bool)
    shared = count_flops(lambda: sep.part_features(token, patches, masks))
    one_pass = count_flops(lambda: sep.part_norm(sep.part_block(torch.randn(1, P + 1, D))))
    reference = ours - shared + 2 * K * one_pass
    model.requires_grad_(True)
    return {"ours_gflop": ours / 1e9, "reference_structure_gflop": reference / 1e9}


def matmul_gflops(device, dtype=torch.float32, n: int = 2048, seconds: float = 2.0) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    chunk = 10 if device.type == "cuda" else 1
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(chunk):
            a @ b
        reps += chunk
        _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def _explicit_attention(self: Attention, x: torch.Tensor) -> torch.Tensor:
    q, k, v = self.qkv_heads(x)
    attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
    attn = F.dropout(attn, self._dropout_p(), self.training)
    return self.output(attn @ v)


@contextlib.contextmanager
def explicit_attention():
    """Temporarily replace the fused kernel by explicit attention in every block."""
    fused = Attention.forward
    Attention.forward = _explicit_attention
    try:
        yield
    finally:
        Attention.forward = fused


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=5, help="timed forwards per setting (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--strides", type=int, nargs="+", default=[16, 11])
    p.add_argument("--families", action="store_true",
                   help="one row per backbone family at 256x128 (FAMILY_ROWS) instead of the ViT-B strides")
    p.add_argument("--dtypes", nargs="+", default=None, choices=list(DTYPES),
                   help="default: float32 on the CPU; float32 bfloat16 float16 on CUDA")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--no-explicit", action="store_true", help="skip the fused-vs-explicit attention comparison")
    p.add_argument("--json", default="", help="also write the results to this file")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtypes = args.dtypes or (["float32", "bfloat16", "float16"] if device.type == "cuda" else ["float32"])
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    peak = matmul_gflops(device)
    result = {"device": machine, "torch": torch.__version__, "batch": args.batch, "iters": args.iters,
              "matmul_fp32_gflops": peak, "configs": []}
    print(f"device: {machine}  torch {torch.__version__}  batch {args.batch}  iters {args.iters}")
    print(f"float32 matmul ({2048}^3): {peak:.1f} GFLOP/s")
    if device.type == "cuda":
        for name in ("bfloat16", "float16"):
            result[f"matmul_{name}_gflops"] = matmul_gflops(device, DTYPES[name])
            print(f"{name} matmul: {result[f'matmul_{name}_gflops']:.1f} GFLOP/s")

    rows = FAMILY_ROWS if args.families else [(BUILTIN, stride) for stride in args.strides]
    for kind, stride in rows:
        torch.manual_seed(0)
        model = make_model(stride, kind=kind)
        flops = model_flops(model)
        model.to(device)
        entry = {"transformer_type": kind, "stride": stride, "grid": list(model.grid_size),
                 "descriptor_dim": model.descriptor_dim, **flops}
        print(f"\n{kind} stride {stride}: grid {model.grid_size[0]}x{model.grid_size[1]}, descriptor "
              f"{model.descriptor_dim}, {flops['ours_gflop']:.1f} GFLOP/image "
              f"(reference structure ~{flops['reference_structure_gflop']:.1f})")
        for name in dtypes:
            runner = Runner(model, device, args.batch, DTYPES[name])
            for _ in range(args.warmup):
                runner.once()
            fused, explicit = [], []
            for _ in range(args.iters):  # fused and explicit attention interleaved (same load)
                fused.append(runner.once())
                if name == "float32" and not args.no_explicit:
                    with explicit_attention():
                        explicit.append(runner.once())
            ips = runner.images_per_second(fused)
            achieved = ips * flops["ours_gflop"]
            entry[name] = {"images_per_s": ips, "achieved_gflops": achieved, "fraction_of_fp32_matmul": achieved / peak}
            note = f"{achieved / peak:.0%} of fp32 matmul"
            if f"matmul_{name}_gflops" in result:
                same = achieved / result[f"matmul_{name}_gflops"]
                entry[name][f"fraction_of_{name}_matmul"] = same
                note += f", {same:.0%} of {name} matmul"
            print(f"  {name:9s} {ips:8.2f} images/s  {achieved:8.1f} GFLOP/s  ({note})")
            if explicit:
                ips_explicit = runner.images_per_second(explicit)
                entry["explicit_attention_fp32_images_per_s"] = ips_explicit
                entry["fused_vs_explicit"] = ips / ips_explicit
                print(f"  explicit attention float32 {ips_explicit:.2f} images/s -> fused/explicit {ips / ips_explicit:.2f}x")
        result["configs"].append(entry)
        del model
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
