"""``python -m mbf`` is the ``mbf`` command."""
import sys

from .cli import main

sys.exit(main())
