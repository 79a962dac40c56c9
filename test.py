"""Evaluate MBF: ``python test.py --config_file configs/OCC_Duke/mbf.yml TEST.WEIGHT W``."""
import sys

from mbf.cli import main

if __name__ == "__main__":
    sys.exit(main(["test", *sys.argv[1:]]))
