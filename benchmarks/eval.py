"""Distances, ranking and re-ranking: ours versus the straightforward algorithms, side by side.

Sizes default to Occluded-Duke's test split (2,210 queries x 17,661 gallery images, 6,912-d
MBF descriptors) times ``--scale``. Features are random but clustered by identity (so that
neighbourhoods and matches look like a re-ID test set, mAP about 0.6). Every measurement
runs in a fresh process and reports its peak resident memory above what it started with
(the inputs); the outputs of the two sides of a pair are compared (CMC/mAP must be
identical, re-ranked distances within 1e-4).

    python benchmarks/eval.py --scale 0.25 --threads 1        # a quarter of Occluded-Duke
    python benchmarks/eval.py --scale 1 --threads 1 --skip-slow  # full size, ours only for re-ranking
    python benchmarks/eval.py --scale 1 --device cuda          # on a GPU (ranking baselines stay on the CPU)

On a machine shared with other work, ``--threads 1`` gives stable numbers: a second OpenMP
thread that is not scheduled stalls every tensor operation.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FULL = dict(num_query=2210, num_gallery=17661, dim=6912)

STEPS = {  # name -> (kind, ours?)
    "distance: bare matmul": ("distance", False),
    "distance: ours (chunked)": ("distance", True),
    "rank: straightforward (sort rows)": ("rank", False),
    "rank: ours": ("rank", True),
    "re-rank: straightforward": ("rerank", False),
    "re-rank: ours": ("rerank", True),
}


def _features(nq: int, ng: int, dim: int, ids: int, noise: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, dim, generator=g)
    q_pids = torch.randint(0, ids, (nq,), generator=g)
    g_pids = torch.cat([q_pids, torch.randint(0, ids, (ng - nq,), generator=g)])[torch.randperm(ng, generator=g)]
    qf = torch.nn.functional.normalize(centres[q_pids] + noise * torch.randn(nq, dim, generator=g), dim=1)
    gf = torch.nn.functional.normalize(centres[g_pids] + noise * torch.randn(ng, dim, generator=g), dim=1)
    q_cams = torch.randint(0, 8, (nq,), generator=g)
    g_cams = torch.randint(0, 8, (ng,), generator=g)
    return qf, gf, q_pids.numpy(), g_pids.numpy(), q_cams.numpy(), g_cams.numpy()


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _start_peak() -> int:
    """Reset the peak resident set to the current one (Linux), so the step's own peak is measured."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS") or 0
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_mib(start: int) -> float:
    """Peak resident memory above the step's starting point, MiB."""
    peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(peak - start, 0) / 2**10


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _task(name: str, args, out_file: str, queue) -> None:
    from mbf.evaluation import (euclidean_distance, evaluate_rank, evaluate_rank_reference, re_ranking,
                                re_ranking_reference)

    if args.threads:
        torch.set_num_threads(args.threads)
    qf, gf, qp, gp, qc, gc = _features(args.num_query, args.num_gallery, args.dim, args.ids, args.noise)
    on_device = not name.endswith("straightforward") and "sort rows" not in name
    if on_device:
        qf, gf = qf.to(args.device), gf.to(args.device)
    dist = None
    if name.startswith("rank"):
        dist = euclidean_distance(qf, gf)
        dist = dist.to(args.device) if on_device else dist.cpu()
    _sync(args.device)
    before = _start_peak()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if name == "distance: bare matmul":
        out = qf @ gf.t()
    elif name == "distance: ours (chunked)":
        out = euclidean_distance(qf, gf, chunk=args.chunk)
    elif name == "rank: straightforward (sort rows)":
        out = evaluate_rank_reference(dist, qp, gp, qc, gc)
    elif name == "rank: ours":
        out = evaluate_rank(dist, qp, gp, qc, gc)
    elif name == "re-rank: straightforward":
        out = re_ranking_reference(qf, gf, args.k1, args.k2, 0.3)
    elif name == "re-rank: ours":
        out = re_ranking(qf, gf, args.k1, args.k2, 0.3)
    else:
        raise ValueError(name)
    _sync(args.device)
    seconds = time.perf_counter() - start
    peak = _peak_mib(before)
    if args.device.startswith("cuda") and on_device:
        peak = max(peak, torch.cuda.max_memory_allocated() / 2**20)
    if isinstance(out, tuple):
        np.savez(out_file, cmc=out[0], mAP=out[1])
    elif STEPS[name][0] == "rerank":
        np.savez(out_file, dist=np.asarray(torch.as_tensor(out).cpu()))
    queue.put((seconds, max(peak, 0.0)))


def measure(name: str, args, out_file: str) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_task, args=(name, args, out_file, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def agreement(kind: str, base_file: str, ours_file: str) -> str:
    if kind == "rank":
        with np.load(base_file) as a, np.load(ours_file) as b:
            same = np.array_equal(a["cmc"], b["cmc"]) and abs(float(a["mAP"]) - float(b["mAP"])) < 1e-12
            return f"CMC, mAP {'identical' if same else 'DIFFER'} (mAP {float(b['mAP']):.4f})"
    if kind == "rerank":
        with np.load(base_file) as a, np.load(ours_file) as b:
            return f"max |difference| {np.abs(a['dist'] - b['dist']).max():.1e}"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.25, help="fraction of Occluded-Duke's query/gallery sizes")
    ap.add_argument("--dim", type=int, default=FULL["dim"])
    ap.add_argument("--ids", type=int, default=0,
                    help="identities (default: Occluded-Duke's 1,110 times --scale, ~16 gallery images each)")
    ap.add_argument("--noise", type=float, default=5.0,
                    help="spread around identity centres (5.0: mAP ~0.6, like a trained model on Occluded-Duke)")
    ap.add_argument("--chunk", type=int, default=4096, help="queries per distance block")
    ap.add_argument("--k1", type=int, default=20)
    ap.add_argument("--k2", type=int, default=6)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu", help="where ours runs: cpu or cuda")
    ap.add_argument("--skip-slow", action="store_true", help="leave out the straightforward re-ranking")
    args = ap.parse_args()
    args.num_query = max(2, int(FULL["num_query"] * args.scale))
    args.num_gallery = max(args.num_query + 1, int(FULL["num_gallery"] * args.scale))
    args.ids = args.ids or max(2, round(1110 * args.scale))
    threads = args.threads or torch.get_num_threads()
    print(f"{args.num_query} queries x {args.num_gallery} gallery, {args.dim}-d, {threads} thread(s), "
          f"ours on {args.device}; re-ranking k1={args.k1}, k2={args.k2}, lambda=0.3")
    print("| step | seconds | peak memory (MiB) | ratio | outputs |")
    print("| --- | --- | --- | --- | --- |")
    pairs = [("distance: bare matmul", "distance: ours (chunked)"),
             ("rank: straightforward (sort rows)", "rank: ours"),
             ("re-rank: straightforward", "re-rank: ours")]
    with tempfile.TemporaryDirectory() as tmp:
        for base, ours in pairs:
            kind = STEPS[ours][0]
            base_file, ours_file = str(Path(tmp) / f"{kind}_base.npz"), str(Path(tmp) / f"{kind}_ours.npz")
            t_base = None
            if not (args.skip_slow and kind == "rerank"):
                t_base, m_base = measure(base, args, base_file)
                print(f"| {base} | {t_base:.2f} | {m_base:.0f} | 1.0x | |", flush=True)
            t_ours, m_ours = measure(ours, args, ours_file)
            if t_base is None:
                ratio, outputs = "-", ""
            elif kind == "distance":
                ratio, outputs = f"{t_ours / t_base:.2f}x the matmul's time", ""
            else:
                ratio, outputs = f"{t_base / t_ours:.1f}x faster", agreement(kind, base_file, ours_file)
            print(f"| {ours} | {t_ours:.2f} | {m_ours:.0f} | {ratio} | {outputs} |", flush=True)


if __name__ == "__main__":
    main()
