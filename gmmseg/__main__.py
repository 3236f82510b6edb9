"""``python -m gmmseg``: the same command line as ``python segmentation_GMM.py``."""

import sys

from gmmseg.cli import main

sys.exit(main())
