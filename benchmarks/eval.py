"""Distances, ranking and re-ranking: ours versus the straightforward algorithms, side by side.

Sizes default to Occluded-Duke's test split (2,210 queries x 17,661 gallery images, 6,912-d
MBF descriptors) times ``--scale``; every measurement runs in a fresh process so that its
peak resident memory can be reported.

    python benchmarks/eval.py --scale 0.25           # a quarter of Occluded-Duke (minutes on 2 cores)
    python benchmarks/eval.py --scale 1 --skip-slow  # full size, ours only
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import torch

FULL = dict(num_query=2210, num_gallery=17661, dim=6912)


def _features(nq: int, ng: int, dim: int, ids: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, dim, generator=g)
    q_pids = torch.randint(0, ids, (nq,), generator=g)
    g_pids = torch.cat([q_pids, torch.randint(0, ids, (ng - nq,), generator=g)])[torch.randperm(ng, generator=g)]
    qf = torch.nn.functional.normalize(centres[q_pids] + 1.5 * torch.randn(nq, dim, generator=g), dim=1)
    gf = torch.nn.functional.normalize(centres[g_pids] + 1.5 * torch.randn(ng, dim, generator=g), dim=1)
    q_cams = torch.randint(0, 8, (nq,), generator=g)
    g_cams = torch.randint(0, 8, (ng,), generator=g)
    return qf, gf, q_pids.numpy(), g_pids.numpy(), q_cams.numpy(), g_cams.numpy()


def _task(name: str, args, queue) -> None:
    from mbf.evaluation import (euclidean_distance, evaluate_rank, evaluate_rank_reference, re_ranking,
                                re_ranking_reference)

    torch.set_num_threads(args.threads or torch.get_num_threads())
    qf, gf, qp, gp, qc, gc = _features(args.num_query, args.num_gallery, args.dim, args.ids)
    dist = None
    if name.startswith("rank"):
        dist = euclidean_distance(qf, gf)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
        out = re_ranking_reference(qf, gf, 20, 6, 0.3)
    elif name == "re-rank: ours":
        out = re_ranking(qf, gf, 20, 6, 0.3)
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    checksum = float(np.asarray(out[1] if isinstance(out, tuple) else torch.as_tensor(out).double().sum()))
    queue.put((seconds, max(peak - before, 0) / 2**10, checksum))


def measure(name: str, args) -> tuple[float, float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_task, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.25, help="fraction of Occluded-Duke's query/gallery sizes")
    ap.add_argument("--dim", type=int, default=FULL["dim"])
    ap.add_argument("--ids", type=int, default=1100)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--skip-slow", action="store_true", help="leave out the straightforward re-ranking")
    args = ap.parse_args()
    args.num_query = max(2, int(FULL["num_query"] * args.scale))
    args.num_gallery = max(args.num_query + 1, int(FULL["num_gallery"] * args.scale))
    print(f"{args.num_query} queries x {args.num_gallery} gallery, {args.dim}-d, {torch.get_num_threads()} threads")
    print("| step | seconds | peak memory (MiB) | ratio |")
    print("| --- | --- | --- | --- |")
    pairs = [("distance: bare matmul", "distance: ours (chunked)"),
             ("rank: straightforward (sort rows)", "rank: ours"),
             ("re-rank: straightforward", "re-rank: ours")]
    for base, ours in pairs:
        skip = args.skip_slow and base.startswith("re-rank")
        t_base = None
        if not skip:
            t_base, m_base, c_base = measure(base, args)
            print(f"| {base} | {t_base:.2f} | {m_base:.0f} | 1.0x |", flush=True)
        t_ours, m_ours, c_ours = measure(ours, args)
        ratio = f"{t_base / t_ours:.1f}x faster" if t_base else "-"
        if base.startswith("distance") and t_base:
            ratio = f"{t_ours / t_base:.2f}x the matmul time"
        print(f"| {ours} | {t_ours:.2f} | {m_ours:.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
