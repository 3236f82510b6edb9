"""The floor: what any tool must pay to turn a photo into an 8-bit label map.

    python bench/floor.py --image P --out DIR

Imports the libraries the CLI imports (so interpreter start-up and import time
are counted), decodes the image and writes an 8-bit PNG of the same size (its
first channel) to ``DIR/<stem>_floor.png``. No clustering at all.
"""

import argparse
import os

import matplotlib.figure
import numpy as np
import scipy.special
import scipy.stats
import sklearn.cluster
import tqdm
from PIL import Image

# Imported only to pay their import cost, as the CLI does (it also draws a figure).
PAID_FOR = (matplotlib.figure, scipy.special, scipy.stats, sklearn.cluster, tqdm)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with Image.open(args.image) as img:
        first_channel = np.asarray(img.convert("RGB"))[:, :, 0]
    stem = os.path.splitext(os.path.basename(args.image))[0]
    Image.fromarray(first_channel).save(os.path.join(args.out, f"{stem}_floor.png"))


if __name__ == "__main__":
    main()
