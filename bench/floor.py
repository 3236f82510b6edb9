"""The floor: what any tool must pay to turn a photo into an 8-bit label map.

    python bench/floor.py --image P --out DIR [--k 4]

Imports the libraries the CLI imports (so interpreter start-up and import time
are counted), decodes the image and writes to ``DIR/<stem>_floor.png`` an
8-bit PNG of the same size holding a label map of ``--k`` values, as the CLI
writes one: the first channel cut at its k-quantiles (a 256-entry table from
its histogram, a few milliseconds). No clustering at all. Until issue 23 the
floor wrote the first channel itself, a noisy 8-bit image that took 1.16 s
more to compress at 11 MP than a map of 4 values, which the CLI never pays.
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
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    with Image.open(args.image) as img:
        first_channel = np.asarray(img.convert("RGB"))[:, :, 0]
    stem = os.path.splitext(os.path.basename(args.image))[0]
    Image.fromarray(k_bands(first_channel, args.k)).save(
        os.path.join(args.out, f"{stem}_floor.png"))


def k_bands(channel, k):
    """Each 8-bit value's band among ``k`` of about equal pixel counts: a map of k values.

    Parameters
    ----------
    channel : ndarray of uint8, any shape
    k : int
        1 to 256. All k values appear when no single value holds more than
        1/k of the pixels.

    Returns
    -------
    labels : ndarray of uint8, the shape of ``channel``
    """
    counts = np.bincount(channel.ravel(), minlength=256)
    below = np.cumsum(counts) - counts  # pixels darker than each value
    table = np.minimum(below * k // channel.size, k - 1).astype(np.uint8)
    return table[channel]


if __name__ == "__main__":
    main()
