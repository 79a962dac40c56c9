"""benchmarks/deploy.py faiss on a small gallery: the build, a kept folder and its query runs."""
import json

import pytest


def test_faiss_benchmark_keeps_its_folder_and_reruns_the_queries(tmp_path, benchmark_script, capsys):
    deploy = benchmark_script("deploy")
    folder = tmp_path / "run"
    common = ["--queries", "8", "--rerank-factors", "3", "--nprobe", "8"]
    assert deploy.main(["faiss", "--count", "2400", "--dim", "64", "--chunk", "800", "--keep", str(folder),
                        "--json", str(tmp_path / "r.json"), *common]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["count"] == 2400 and result["params"]["pca"] == 0  # 64-d: no projection
    runs = result["queries_run"]
    assert set(runs) == {"index_only", "rerank3_cold", "rerank3_warm"}
    assert runs["rerank3_cold"]["cold"] and not runs["rerank3_warm"]["cold"]
    assert runs["rerank3_cold"]["rerank_factor"] == 3 and runs["index_only"]["nprobe"] == 8
    for run in runs.values():
        assert 0.0 <= run["recall_at_10"] <= 1.0 and run["query_ms_median"] > 0 and run["peak_rss_mb"] > 0
    # exact re-scoring of candidates never does worse than the index's own approximate order
    assert runs["rerank3_warm"]["recall_at_10"] >= runs["index_only"]["recall_at_10"]
    assert {p.name for p in folder.iterdir()} >= {"feats.npy", "idx", "queries.npy", "exact.npy", "build.json"}
    capsys.readouterr()
    assert deploy.main(["faiss-query", "--keep", str(folder), *common]) == 0
    assert "rerank 3 x 10, warm" in capsys.readouterr().out
    with pytest.raises(FileExistsError):  # a kept folder is never built over
        deploy.main(["faiss", "--count", "2400", "--dim", "64", "--keep", str(folder), *common])
