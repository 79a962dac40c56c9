"""Train MBF: ``python train.py --config_file configs/OCC_Duke/mbf.yml [KEY VALUE ...]``."""
import sys

from mbf.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
