"""benchmarks/demo_step.py times the demo's step for any model overrides and reports the matrix-product share."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMALL = ["MODEL.VIT_EMBED_DIM", "32", "MODEL.VIT_NUM_HEADS", "2", "MODEL.DECODER_FFN_DIM", "32",
         "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "2"]


def run(*args):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "demo_step.py"), "--iters", "1", *args, *SMALL],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_step_is_timed_at_the_configured_width_and_batch_with_its_matrix_product_share():
    out = run("--profile")
    assert re.search(r"width 32, depth 4, batch 8, float32: \d+\.\d{3} s/step", out), out
    share, rate = re.search(r"matrix products: (\d+)% of the CPU time, (\d+) GFLOP/s", out).groups()
    assert 0 <= int(share) <= 100 and int(rate) >= 0  # the report's form: its values depend on the machine's load


def test_bfloat16_autocast_is_what_the_step_runs_under_when_asked():
    assert "bfloat16 autocast on cpu" in run("--amp", "bfloat16")
