"""Regions: connected pieces of the labels, small ones folded, similar neighbours merged.

A colour label may cover several separate objects, and one object may be
split by its shading into several labels; these functions turn a label map
into regions a person would draw more nearly.
"""

import heapq

import numpy as np

import utils

__all__ = ["connected_regions", "final_owners", "merge_regions", "region_borders"]


def connected_regions(labels, min_area):
    """Split each label into connected regions and fold the small ones into large ones.

    A colour label may cover several separate objects (dark shading on two
    of them, say); its connected pieces are separate regions here. A region
    of fewer than ``min_area`` pixels takes, pixel by pixel, the region and
    label of the nearest pixel of a large region (Euclidean distance), which
    removes the specks that smoothing leaves.

    Parameters
    ----------
    labels : ndarray of shape (h, w), uint8
        Component of each pixel.
    min_area : int
        In pixels. If no region is this large, nothing is folded.

    Returns
    -------
    regions : ndarray of shape (h, w), int32
        Region of each pixel, numbered 0 .. n_regions - 1; pixels of a region
        are 4-connected (those that took over a small region border it).
    labels : ndarray of shape (h, w), uint8
        Component of each pixel after the folding: constant over a region.
    """
    from scipy import ndimage
    from skimage.measure import label as connected

    # background=-1: no value is background; 4-neighbours of equal label join.
    regions = connected(labels, background=-1, connectivity=1)
    small = np.bincount(regions.ravel())[regions] < min_area
    if small.any() and not small.all():
        nearest = tuple(ndimage.distance_transform_edt(small, return_distances=False,
                                                        return_indices=True))
        regions, labels = regions[nearest], labels[nearest]
    present = np.flatnonzero(np.bincount(regions.ravel()))
    lookup = np.zeros(present[-1] + 1, dtype=np.int32)
    lookup[present] = np.arange(len(present))
    return lookup[regions], labels


def region_borders(regions, across_columns=None, across_rows=None):
    """The pairs of regions that touch (4-neighbours), and their borders.

    Parameters
    ----------
    regions : ndarray of shape (h, w), int
        Numbered 0 .. n_regions - 1.
    across_columns : ndarray of shape (h, w - 1) or (h, w - 1, m), optional
        A value (or m values) for each pixel and its right neighbour (a
        contrast, say).
    across_rows : ndarray of shape (h - 1, w) or (h - 1, w, m), optional
        The same for each pixel and the one below; both or neither.

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), int64
        Each touching pair once, smaller number first, in increasing order.
    length : ndarray of shape (n_pairs,), int64
        Pixel pairs along each border.
    total : ndarray of shape (n_pairs,) or (n_pairs, m)
        Sum of the given values along each border (zeros if none given).
    """
    n = int(regions.max()) + 1
    keys, values = [], []
    for a, b, value in ((regions[:, :-1], regions[:, 1:], across_columns),
                        (regions[:-1, :], regions[1:, :], across_rows)):
        a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
        border = a != b
        keys.append(np.minimum(a, b)[border] * n + np.maximum(a, b)[border])
        if value is not None:
            values.append(value.reshape(border.size, -1)[border])
    keys, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    total = np.zeros(len(keys))
    if values:
        values = np.concatenate(values)
        total = np.stack([np.bincount(inverse, weights=column, minlength=len(keys))
                          for column in values.T], axis=-1)
        if across_columns.ndim == 2:
            total = total[:, 0]
    return (np.stack([keys // n, keys % n], axis=1), np.bincount(inverse, minlength=len(keys)),
            total)


def merge_regions(regions, image, max_difference):
    """Merge touching regions of similar colour, the most similar pair first.

    Colour shading splits one surface into several components; two touching
    regions whose mean colours differ by less than ``max_difference`` (CIE76
    Delta E in CIELAB, about 2.3 for a just noticeable difference) become
    one, and the merged region's mean is compared afresh with its
    neighbours. A single threshold leaves a simple image few regions and a
    busy one many, which one K for every image cannot.

    Parameters
    ----------
    regions : ndarray of shape (h, w), int
        Numbered 0 .. n_regions - 1 (``connected_regions``).
    image : ndarray of shape (h, w, c)
        c = 1 is compared as grey (lightness only).
    max_difference : float
        Delta E.

    Returns
    -------
    regions : ndarray of shape (h, w), int32
        Numbered 0 .. n_merged - 1.
    """
    from skimage.color import rgb2lab

    n = int(regions.max()) + 1
    flat = regions.ravel()
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=image[:, :, ch].ravel(), minlength=n)
                     for ch in range(image.shape[2])], axis=1)
    top = utils.max_value(image)

    def lab(rows):
        rgb = np.clip(sums[rows] / counts[rows, None] / top, 0.0, 1.0)
        return rgb2lab(np.broadcast_to(rgb, (len(rgb), 3))[None])[0]

    colour = lab(np.arange(n))
    neighbours = [set() for _ in range(n)]
    pairs = region_borders(regions)[0]
    for i, j in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    differences = np.linalg.norm(colour[pairs[:, 0]] - colour[pairs[:, 1]], axis=1)
    # A pair's entry carries both regions' versions: once either has grown
    # (its mean colour changed), the entry is stale and skipped.
    version = np.zeros(n, dtype=np.int64)
    heap = [(d, i, j, 0, 0) for d, (i, j) in zip(differences.tolist(), pairs.tolist(), strict=False)
            if d < max_difference]
    heapq.heapify(heap)
    owner = np.arange(n)  # owner[i] == i while region i stands on its own
    while heap:
        _, i, j, version_i, version_j = heapq.heappop(heap)
        if version[i] != version_i or version[j] != version_j or owner[j] != j:
            continue
        counts[i] += counts[j]
        sums[i] += sums[j]
        owner[j] = i
        version[i] += 1
        version[j] += 1
        for m in neighbours[j]:
            neighbours[m].discard(j)
            if m != i:
                neighbours[m].add(i)
                neighbours[i].add(m)
        neighbours[j] = set()
        colour[i] = lab(np.array([i]))[0]
        for m in neighbours[i]:
            d = float(np.linalg.norm(colour[i] - colour[m]))
            if d < max_difference:
                first, second = min(i, m), max(i, m)
                heapq.heappush(heap, (d, first, second, int(version[first]),
                                      int(version[second])))
    _, merged = np.unique(final_owners(owner), return_inverse=True)
    return merged.astype(np.int32)[regions]


def final_owners(owner):
    """Where each region ends after every merge: ``owner`` followed to its roots.

    Parameters
    ----------
    owner : ndarray of shape (n,), int
        The region each region was merged into (itself if none).

    Returns
    -------
    roots : ndarray of shape (n,)
        The region each ends in, which is its own owner. The jumps double
        each round, so a chain of n merges takes log2(n) rounds.
    """
    while True:
        followed = owner[owner]
        if np.array_equal(followed, owner):
            return owner
        owner = followed
