"""How long building a dataset takes on trees of the real sizes (empty files, real names).

MSMT17 (126,441 images in 4,101 folders, read from its four lists) and Market-1501 (36,036
files in three folders) are generated once under ``--root`` (kept, reused on later runs);
each build is then timed ``--repeat`` times in this process (the tree is in the page cache
after the first).

    python benchmarks/datasets.py --root /tmp/mbf_dataset_bench
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

MSMT17 = {  # list -> (image folder, identities, images)
    "list_train.txt": ("train", 1041, 30248),
    "list_val.txt": ("train", 1041, 2373),
    "list_query.txt": ("test", 3060, 11659),
    "list_gallery.txt": ("test", 3060, 82161),
}
MARKET = {"bounding_box_train": (751, 12936), "query": (750, 3368), "bounding_box_test": (751, 19732)}


def touch(path: Path) -> None:
    path.touch()


def write_msmt17(root: Path) -> None:
    base = root / "msmt17" / "MSMT17_V1"
    if (base / "list_gallery.txt").is_file():
        return
    for k, (list_name, (folder, ids, images)) in enumerate(MSMT17.items()):
        lines = []
        for i in range(images):
            pid = i % ids
            name = f"{pid:04d}_{i // ids:03d}_{i % 15 + 1:02d}_0303morning_{i % 10000:04d}_{k}.jpg"
            rel = f"{pid:04d}/{name}"
            (base / folder / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
            touch(base / folder / rel)
            lines.append(f"{rel} {pid}\n")
        (base / list_name).write_text("".join(lines))


def write_market(root: Path) -> None:
    base = root / "market1501"
    if (base / "bounding_box_test").is_dir():
        return
    for folder, (ids, images) in MARKET.items():
        (base / folder).mkdir(parents=True)
        for i in range(images):
            touch(base / folder / f"{i % ids + 1:04d}_c{i % 6 + 1}s1_{i:06d}_01.jpg")


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/tmp/mbf_dataset_bench", help="where the generated trees are kept")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from mbf.data import build_dataset, build_test_set

    logging.disable(logging.WARNING)  # the generated trees do not have the published counts of every split
    root = Path(args.root)
    start = time.perf_counter()
    write_msmt17(root)
    write_market(root)
    print(f"trees ready under {root} in {time.perf_counter() - start:.1f} s")
    runs = {
        "msmt17 (all splits, train + val)": lambda: build_dataset("msmt17", str(root), verbose=False),
        "msmt17 (query + gallery only)": lambda: build_test_set("msmt17", str(root), verbose=False),
        "market1501 (all splits)": lambda: build_dataset("market1501", str(root), verbose=False),
    }
    print("| build | images | first (s) | median (s) |")
    print("| --- | --- | --- | --- |")
    for label, fn in runs.items():
        dataset = fn()
        size = len(dataset.train) + len(dataset.query) + len(dataset.gallery)
        times = timed(fn, args.repeat)
        print(f"| {label} | {size:,} | {times[0]:.2f} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
