"""Deployment measurements: onnxruntime vs PyTorch on the CPU, and FAISS search at gallery scale.

    python benchmarks/deploy.py onnx --batch 32 --iters 3            # ViT-B MBF descriptor, 256x128
    python benchmarks/deploy.py faiss --count 1000000 --queries 200 --keep DIR   # synthetic 6,912-d gallery
    python benchmarks/deploy.py faiss-query --keep DIR [--nprobe N] [--rerank-factors 1,2,4]

``onnx``: exports a randomly initialised ViT-B MBF (the OCC_Duke config's model: 256x128,
stride 16, 8 cameras) with ``mbf.retrieval.export`` and times PyTorch and onnxruntime on the
same batch, interleaved (median of ``--iters``).

``faiss``: a synthetic gallery of re-ID-like descriptors, generated in chunks from a seed and
never held in memory whole (see :class:`SyntheticGallery`). One pass over the chunks keeps
the exact top-10 of every query (chunked brute force in float32) and adds the chunk to an
``ivfpq`` index built with ``mbf.retrieval.faiss_index`` (trained on the first chunk, a random
sample thanks to the shuffled identities); the chunk is also written to a float16 .npy on
disk, as ``mbf extract --dtype float16`` stores a gallery. The index is saved (in ``--keep``,
a new folder, or a temporary one), and fresh processes load it and answer the queries, one
at a time and in one batch: from the index alone, and with the ``rerank_factor * 10`` best
candidates re-scored from the gallery on disk (``mbf search --rerank``), each factor once with
the gallery file evicted from the page cache (cold) and once more (warm). Each reports its
peak resident memory (VmHWM). ``faiss-query`` repeats the query runs on a kept folder, e.g.
with another ``--nprobe``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------- ONNX vs PyTorch
def bench_onnx(args) -> dict:
    from inference import make_model

    from mbf.config import get_cfg
    from mbf.retrieval.export import export_onnx, onnx_session
    from mbf.retrieval.metadata import ModelCard

    torch.manual_seed(0)
    model = make_model(16)
    cfg = get_cfg()
    cfg.merge_from_list(["INPUT.SIZE_TEST", [256, 128], "INPUT.SIZE_TRAIN", [256, 128]])
    card = ModelCard.from_config(cfg, model)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = export_onnx(model, card, Path(tmp) / "mbf_vitb.onnx", check_batch=2)
        export_s = time.perf_counter() - start
        session = onnx_session(report.path)
        size_mb = report.path.stat().st_size / 2**20
        gen = torch.Generator().manual_seed(1)
        images = torch.randn(args.batch, 3, 256, 128, generator=gen)
        cams = torch.arange(args.batch) % card.num_cameras
        feeds = {"images": images.numpy(), "cameras": cams.numpy()}

        def run_torch():
            with torch.inference_mode():
                return model(images, cam_label=cams).numpy()

        def run_onnx():
            return session.run(["descriptor"], feeds)[0]

        times = {"pytorch": [], "onnxruntime": []}
        a, b = run_torch(), run_onnx()  # warm-up, and the parity of this batch
        rel = float(np.abs(a - b).max() / np.abs(a).max())
        for _ in range(args.iters):
            for name, fn in (("pytorch", run_torch), ("onnxruntime", run_onnx)):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    result = {"batch": args.batch, "iters": args.iters, "threads": torch.get_num_threads(), "export_s": export_s,
              "onnx_mb": size_mb, "export_check_rel_error": report.relative_error, "batch_rel_error": rel}
    for name, ts in times.items():
        result[f"{name}_images_per_s"] = args.batch / statistics.median(ts)
        result[f"{name}_seconds"] = ts
    result["onnx_vs_pytorch"] = result["onnxruntime_images_per_s"] / result["pytorch_images_per_s"]
    print(f"export {export_s:.1f} s, {size_mb:.0f} MiB, parity check rel. error {report.relative_error:.2e}; "
          f"batch {args.batch}: rel. error {rel:.2e}")
    print(f"PyTorch     {result['pytorch_images_per_s']:.2f} images/s   {times['pytorch']}")
    print(f"onnxruntime {result['onnxruntime_images_per_s']:.2f} images/s   {times['onnxruntime']}")
    print(f"onnxruntime / PyTorch: {result['onnx_vs_pytorch']:.2f}x")
    return result


# ---------------------------------------------------------------------------- synthetic gallery
class SyntheticGallery:
    """Re-ID-like descriptors: appearance groups > identities > views, L2-normalised.

    Every identity's code is its group's code (groups of ``ids_per_group`` people who look
    alike, spread 1.0) plus its own offset (spread ``id_spread``); each image (view) adds view
    noise (``view_spread``) to its identity's code, in a ``rank``-dimensional latent space with a
    decaying spectrum (1/sqrt(j)), mapped to ``dim`` by a random matrix. A shared offset gives
    unrelated images a positive cosine (``offset`` of the signal's norm) and isotropic noise
    carries ``noise`` of the signal's energy in all ``dim`` dimensions. Rows are views of a
    random permutation of identities, so any block of rows is a random sample.
    """

    def __init__(self, count: int, dim: int = 6912, rank: int = 384, views: int = 8, ids_per_group: int = 50,
                 id_spread: float = 0.8, view_spread: float = 0.5, offset: float = 0.65, noise: float = 0.25,
                 seed: int = 0):
        self.count, self.dim, self.rank, self.views, self.seed = count, dim, rank, views, seed
        g = torch.Generator().manual_seed(seed)
        spectrum = torch.arange(1, rank + 1, dtype=torch.float32) ** -0.5
        spectrum *= (rank / spectrum.square().sum()).sqrt()
        self.mix = torch.randn(rank, dim, generator=g) / dim**0.5 * spectrum[:, None]  # rows of norm ~spectrum
        self.num_ids = -(-count // views)
        groups = -(-self.num_ids // ids_per_group)
        self.codes = (torch.randn(groups, rank, generator=g)[torch.arange(self.num_ids) % groups]
                      + id_spread * torch.randn(self.num_ids, rank, generator=g))
        energy = rank * (1 + id_spread**2 + view_spread**2)  # mean squared norm of the signal
        self.offset = torch.randn(dim, generator=g) * (offset * energy**0.5 / dim**0.5)
        self.noise = (noise * energy / dim) ** 0.5
        self.view_spread = view_spread
        self.identity = torch.randperm(count, generator=g) // views  # identity of every row

    def _views(self, ids: torch.Tensor, stream: int, start: int) -> np.ndarray:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + stream * 7_919 + start)
        z = self.codes[ids] + self.view_spread * torch.randn(len(ids), self.rank, generator=g)
        x = torch.addmm(self.offset, z, self.mix) + self.noise * torch.randn(len(ids), self.dim, generator=g)
        return torch.nn.functional.normalize(x, dim=1).numpy()

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self._views(self.identity[start:stop], 1, start)

    def queries(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` new views of gallery identities (their true matches are the identity's gallery views)."""
        ids = torch.randperm(self.num_ids, generator=torch.Generator().manual_seed(self.seed + 1))[:n]
        return self._views(ids, 2, 0), ids.numpy()


def bench_faiss(args) -> dict:
    from mbf.retrieval.faiss_index import IvfPqParams, SearchIndex

    gen_s = gt_s = build_s = 0.0
    t = time.perf_counter()
    data = SyntheticGallery(args.count, args.dim, seed=args.seed)
    queries, qids = data.queries(args.queries)
    gen_s += time.perf_counter() - t
    q = torch.from_numpy(queries)
    best_s = torch.full((len(q), 0), 0.0)
    best_i = torch.empty((len(q), 0), dtype=torch.long)
    overrides = {k: getattr(args, k) for k in ("pca", "nlist", "m", "nprobe", "k_factor") if getattr(args, k)}
    params = IvfPqParams.defaults(args.count, args.dim, **overrides)
    index, stats = None, {}
    first = max(args.chunk, min(params.train_size, args.count))
    start = 0
    if args.keep:  # a new folder, kept for `faiss-query` runs
        folder, tmp = Path(args.keep), None
        folder.mkdir(parents=True, exist_ok=False)
    else:
        tmp = tempfile.TemporaryDirectory(dir=args.tmp or None)
        folder = Path(tmp.name)
    # the gallery as `mbf extract --dtype float16` stores it, for the exact re-scoring of candidates
    on_disk = np.lib.format.open_memmap(folder / "feats.npy", "w+", np.float16, (args.count, args.dim))
    while start < args.count:
        stop = min(start + (first if start == 0 else args.chunk), args.count)
        t = time.perf_counter()
        block = data.rows(start, stop)
        on_disk[start:stop] = block
        gen_s += time.perf_counter() - t
        t = time.perf_counter()  # exact top-10 by cosine (= by Euclidean distance: unit vectors)
        s = torch.cat((best_s, q @ torch.from_numpy(block).T), dim=1)
        i = torch.cat((best_i, torch.arange(start, stop).expand(len(q), -1)), dim=1)
        best_s, order = torch.topk(s, min(10, s.shape[1]), dim=1)
        best_i = i.gather(1, order)
        gt_s += time.perf_counter() - t
        t = time.perf_counter()
        if index is None:
            index = SearchIndex.create("ivfpq", args.dim, True, block, params)
            stats["train_s"] = time.perf_counter() - t
        index.add(block)
        build_s += time.perf_counter() - t
        del block, s
        start = stop
        print(f"  {stop:,} / {args.count:,} descriptors  (generate {gen_s:.0f} s, exact {gt_s:.0f} s, "
              f"index {build_s:.0f} s)", flush=True)
    same_id = float(np.mean(data.identity[best_i].numpy() == qids[:, None]))
    stats.update(count=args.count, dim=args.dim, queries=args.queries, params=index.meta["params"],
                 build_s=build_s, generate_s=gen_s, exact_s=gt_s, index_mb=index.memory_bytes() / 2**20,
                 raw_float32_gb=args.count * args.dim * 4 / 1e9, top10_same_identity=same_id,
                 cos_top1=float(best_s[:, 0].mean()), cos_top10=float(best_s[:, -1].mean()))
    on_disk.flush()
    del on_disk
    index.save(folder / "idx", [str(i) for i in range(args.count)])
    del index
    np.save(folder / "queries.npy", queries)
    np.save(folder / "exact.npy", best_i.numpy())
    (folder / "build.json").write_text(json.dumps(stats, indent=1))
    stats.update(query_runs(folder, args))
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(stats, indent=1))
    return stats


def query_runs(folder: Path, args) -> dict:
    """Fresh processes answer the queries: from the index alone, then re-scored from the gallery on
    disk with each ``--rerank-factors`` value, first with the gallery evicted from the page cache
    (cold: every row read from disk) and then again (warm: the same rows now cached)."""
    def child(rerank_factor: int, cold: bool) -> dict:
        cmd = [sys.executable, __file__, "_query", str(folder), str(args.nprobe or 0), str(rerank_factor),
               str(int(cold))]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        label = f"nprobe {result['nprobe']}, " + (f"rerank {result['rerank_factor']} x 10, {'cold' if cold else 'warm'}"
                                                  if rerank_factor else "index only")
        print(f"  {label}: recall@10 {result['recall_at_10']:.3f}, {result['query_ms_median']:.2f} ms/query "
              f"(p95 {result['query_ms_p95']:.2f}, batched {result['query_ms_batched']:.2f}), "
              f"peak {result['peak_rss_mb']:.0f} MiB", flush=True)
        return result

    runs = {"index_only": child(0, False)}
    for factor in args.rerank_factors:
        for cold in (True, False):
            runs[f"rerank{factor}_{'cold' if cold else 'warm'}"] = child(factor, cold)
    return {"queries_run": runs}


def bench_faiss_query(args) -> dict:
    folder = Path(args.keep)
    if not (folder / "build.json").is_file():
        raise SystemExit(f"{folder} holds no finished `deploy.py faiss --keep` build (build.json missing)")
    stats = json.loads((folder / "build.json").read_text())
    stats.update(query_runs(folder, args))
    print(json.dumps(stats, indent=1))
    return stats


def _evict(path: Path) -> None:
    """Drop a file's pages from the page cache (written back first), so that reads go to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _peak_rss_mb() -> float:
    """VmHWM of this process (reset by exec, unlike getrusage's maximum)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _query(folder: str, nprobe: int, rerank_factor: int, cold: bool) -> None:
    """Child process: load the index, answer the queries, report latency, recall and peak memory."""
    from mbf.retrieval.faiss_index import SearchIndex
    from mbf.retrieval.gallery import NpyRows

    folder = Path(folder)
    if cold:
        _evict(folder / "feats.npy")
    base = _peak_rss_mb()
    t = time.perf_counter()
    index = SearchIndex.load(folder / "idx")
    load_s = time.perf_counter() - t
    params = index.meta["params"]
    nprobe = nprobe or params["nprobe"]
    feats = NpyRows(folder / "feats.npy") if rerank_factor else None
    queries = np.load(folder / "queries.npy")
    exact = np.load(folder / "exact.npy")
    single, found = [], []
    for row in queries:
        t = time.perf_counter()
        found.append(index.search(row[None], 10, nprobe=nprobe, rerank=feats, rerank_factor=rerank_factor)[1][0])
        single.append(time.perf_counter() - t)
    t = time.perf_counter()
    batched = index.search(queries, 10, nprobe=nprobe, rerank=feats, rerank_factor=rerank_factor)[1]
    batch_s = time.perf_counter() - t
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
    recall_b = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(batched, exact)]))
    print(json.dumps({"recall_at_10": recall, "recall_at_10_batched": recall_b, "load_s": load_s,
                      "query_ms_median": 1e3 * statistics.median(single),
                      "query_ms_p95": 1e3 * float(np.quantile(single, 0.95)),
                      "query_ms_batched": 1e3 * batch_s / len(queries), "peak_rss_mb": _peak_rss_mb(),
                      "rss_before_loading_mb": base, "nprobe": nprobe,
                      "k_factor": params["k_factor"], "rerank_factor": rerank_factor, "cold": cold}))


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_query":
        _query(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("onnx", "faiss", "faiss-query"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=6912)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--chunk", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    for name in ("pca", "nlist", "m", "nprobe", "k_factor"):  # nprobe also applies to faiss-query
        p.add_argument(f"--{name}", type=int, default=None, help="ivfpq parameter (default: mbf index's)")
    p.add_argument("--tmp", default="", help="folder for the temporary gallery and index (default: the system's)")
    p.add_argument("--keep", default="", help="faiss: build in this new folder and keep it; faiss-query: the folder")
    p.add_argument("--rerank-factors", type=lambda t: [int(v) for v in t.split(",")], default=[1, 2, 4],
                   help="candidates per result re-scored from the gallery on disk, one query run each (default 1,2,4)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    p.add_argument("--json", default="", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"onnx": bench_onnx, "faiss": bench_faiss, "faiss-query": bench_faiss_query}[args.what](args)
    result.update(machine=f"{os.cpu_count()} CPUs, torch {torch.__version__}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
