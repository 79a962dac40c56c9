"""benchmarks/demo_workers.py times the demo's training per NUM_WORKERS value from the trainer's own log."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from demo_workers import batch_times  # noqa: E402

SMALL = ["MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_NUM_HEADS", "2", "MODEL.DECODER_FFN_DIM", "32",
         "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "SOLVER.IMS_PER_BATCH", "8",
         "DATALOADER.NUM_INSTANCE", "2", "TEST.IMS_PER_BATCH", "16"]


def test_batch_times_are_read_from_every_epoch_line_in_order():
    log = ("x INFO: Epoch 1 done. Time per batch: 0.412[s] Speed: 155.3[samples/s]\n"
           "x INFO: Epoch[2] Iteration[10/24] Loss: 8.7\n"
           "x INFO: Epoch 2 done. Time per batch: 0.398[s] Speed: 160.8[samples/s]\n")
    assert batch_times(log) == [0.412, 0.398]


def test_each_worker_count_is_trained_in_turn_and_tabled_against_the_first(tmp_path):
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "mbf", "synth", "--out", str(data / "Synthetic_Occluded"), "--ids", "12",
                    "--distractors", "2", "--train-per-id", "4"], check=True, capture_output=True, cwd=REPO)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "demo_workers.py"), "--workers", "0", "1",
                           "--epochs", "1", "--rounds", "1", "--data", str(data), "--", *SMALL],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert re.search(r"round 1, NUM_WORKERS 0: \d+\.\d{3} s/batch", done.stdout)
    assert re.search(r"round 1, NUM_WORKERS 1: \d+\.\d{3} s/batch", done.stdout)
    rows = re.findall(r"^\| (\d) \| (\d+\.\d{3}) \| [\d., ]+ \| (\d+\.\d{2}) \|$", done.stdout, re.M)
    assert [r[0] for r in rows] == ["0", "1"] and rows[0][2] == "1.00", done.stdout
