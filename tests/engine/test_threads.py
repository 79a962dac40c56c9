"""torch's CPU threads follow the CPUs this process may run on, or MODEL.CPU_THREADS / threads=."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mbf import runtime
from mbf.runtime import set_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_zero_means_the_cpus_of_this_process_shared_by_torchrun_processes(monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 8)
    assert set_threads(0) == 8 == torch.get_num_threads()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert set_threads(0) == 2 == torch.get_num_threads()
    assert set_threads(3) == 3 == torch.get_num_threads()


@pytest.mark.parametrize("cpu_max, expected", [("150000 100000\n", 2), ("max 100000\n", None), ("50000 100000", 1)])
def test_a_container_cpu_quota_caps_the_cpus(tmp_path, monkeypatch, cpu_max, expected):
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    monkeypatch.setattr(runtime, "CGROUP_CPU_MAX", quota)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert runtime.available_cpus() == (expected or 16)


def test_a_run_records_the_threads_it_was_given(tiny_cfg):
    from mbf.engine.build import build_trainer

    trainer = build_trainer(tiny_cfg(extra=["MODEL.CPU_THREADS", "1"]))
    trainer.close()
    assert torch.get_num_threads() == 1
    assert json.loads((Path(trainer.output_dir) / "environment.json").read_text())["torch_threads"] == 1


def test_the_embedder_takes_its_threads(tmp_path):
    from mbf import Embedder
    from mbf.config import load_config
    from mbf.modeling import build_model

    repo = Path(__file__).resolve().parents[2]
    config = str(repo / "configs" / "Synthetic" / "mbf_tiny.yml")
    opts = ["MODEL.DEVICE", "cpu", "MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_DEPTH", "2", "MODEL.VIT_NUM_HEADS", "2",
            "MODEL.DECODER_FFN_DIM", "32", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]"]
    model = build_model(load_config(config, opts), num_classes=3, camera_num=2, view_num=1, pretrained=False)
    torch.save(model.state_dict(), tmp_path / "m.pth")
    torch.set_num_threads(2)
    Embedder.load(tmp_path / "m.pth", config=config, opts=opts, threads=1)
    assert torch.get_num_threads() == 1
