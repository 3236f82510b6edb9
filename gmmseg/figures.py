"""Figures beyond the lab's own (``utils.visualize``): a sweep over k, and a clip's frames."""

import numpy as np

import utils

__all__ = ["visualize_cuts", "visualize_frames", "visualize_sweep"]


def visualize_sweep(image, labels_by_k, mus_rgb_by_k, records, marked_k=None,
                    criterion="bic", title=None, path=None, show=False):
    """Draw a sweep over K: each segmentation, then BIC, AIC and log-likelihood against K.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
        The image as loaded.
    labels_by_k : list of ndarray of shape (h, w)
        One label image per fit.
    mus_rgb_by_k : list of ndarray of shape (K, c)
        Each fit's component means, in the image's own units.
    records : list of dict
        Each fit's record: ``k``, ``bic``, ``aic``, ``log_likelihood``.
    marked_k : int, optional
        The K to mark on the curves (the criterion's choice).
    criterion : str, default="bic"
        Named in the mark's legend; "bic" and "aic" are marked on their
        curve, any other rule on the log-likelihood's.
    title, path, show : see ``visualize``.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    scored = criterion in ("bic", "aic")  # else marked on the log-likelihood curve
    chosen_by = f"lowest {criterion.upper()}" if scored else f"{criterion} rule"
    image_small, _ = utils.display_copy(image, labels_by_k[0])
    grey = image_small.shape[2] == 1
    h, w = image_small.shape[:2]
    panels = len(records) + 1
    nrows = int(np.ceil(panels / 5))
    ncols = int(np.ceil(panels / nrows))  # rows as even as they can be
    side = 2.6
    figure = utils.new_figure(show, figsize=(side * ncols,
                                             side * h / w * nrows + 3.6 + 0.4 * nrows),
                         dpi=100, layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[side * h / w * nrows + 0.4 * nrows, 3.6])
    axes = top.subplots(nrows, ncols, squeeze=False).ravel()
    shown = [(image_small, "input")]
    for labels, mus_rgb, record in zip(labels_by_k, mus_rgb_by_k, records, strict=True):
        _, labels_small = utils.display_copy(image, labels)
        colours = np.clip(np.asarray(mus_rgb, dtype=np.float64) / utils.max_value(image), 0, 1)
        mark = f" ({chosen_by})" if record["k"] == marked_k else ""
        shown.append((utils.paint(colours, labels_small), f"k = {record['k']}{mark}"))
    for ax, (data, text) in zip(axes, shown, strict=False):
        ax.imshow(data[:, :, 0] if grey else data, cmap="gray" if grey else None, vmin=0,
                  vmax=1, interpolation="nearest")
        ax.set_title(text, fontsize=10, fontweight="bold" if chosen_by in text else None)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.set_axis_off()

    ks = [record["k"] for record in records]
    scores, likelihood = bottom.subplots(1, 2)
    # On photos AIC and BIC differ by far less than they vary with k, so BIC is
    # drawn wide and AIC thin and dashed over it: both stay visible.
    scores.plot(ks, [record["bic"] for record in records], marker="o", markersize=9,
                linewidth=4, color=utils.OKABE_ITO[1], label="BIC")
    scores.plot(ks, [record["aic"] for record in records], marker="s", markersize=4,
                linewidth=1.2, linestyle="--", color=utils.OKABE_ITO[5], label="AIC")
    if marked_k is not None:
        best = next(record for record in records if record["k"] == marked_k)
        ax, name = (scores, criterion) if scored else (likelihood, "log_likelihood")
        ax.plot([marked_k], [best[name]], marker="*", markersize=16, linestyle="none",
                color=utils.OKABE_ITO[7], label=f"{chosen_by}: k = {marked_k}")
        ax.legend(fontsize=8)
    scores.set_xlabel("k (components)")
    scores.set_ylabel("criterion (lower is better)")
    scores.set_title("BIC and AIC", fontsize=10)
    scores.legend(fontsize=8)
    likelihood.plot(ks, [record["log_likelihood"] for record in records], marker="o",
                    color=utils.OKABE_ITO[2])
    likelihood.set_xlabel("k (components)")
    likelihood.set_ylabel("log-likelihood / pixel (nats)")
    likelihood.set_title("fit", fontsize=10)
    for ax in (scores, likelihood):
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    if title:
        figure.suptitle(utils.drawable(title), fontsize=12)
    utils.finish_figure(figure, path, show)
    return figure


def visualize_frames(frames, labels, mus_rgb, indices, n_frames, share=None, title=None,
                     path=None, show=False):
    """A few frames of a clip above their segmentation, with a key of the components.

    Parameters
    ----------
    frames : list of ndarray of shape (h, w, 3), uint8
        The input frames shown.
    labels : list of ndarray of shape (h, w)
        Their labels.
    mus_rgb : ndarray of shape (K, 3)
        Each component's mean colour, 0..255 (the palette of the segmented clip).
    indices : list of int
        Each shown frame's index in the clip, from 0.
    n_frames : int
        Frames in the clip.
    share : ndarray of shape (K,), optional
        Each component's share of the clip's pixels, for the key.
    title, path, show : see ``visualize``.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    colours = np.clip(np.asarray(mus_rgb, dtype=np.float64) / 255, 0, 1)
    columns = len(frames)
    small = [utils.display_copy(frame, label) for frame, label in zip(frames, labels, strict=True)]
    h, w = small[0][1].shape
    figure = utils.new_figure(show, figsize=(3.2 * columns, 2 * 3.2 * h / w + 1.5), dpi=100,
                         layout="constrained")
    axes = figure.subplots(2, columns, squeeze=False)
    for col, ((image, label), index) in enumerate(zip(small, indices, strict=True)):
        for row, (data, name) in enumerate(((image, "input"),
                                            (colours[label], f"segmented, k = {len(colours)}"))):
            ax = axes[row, col]
            ax.imshow(data, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {index + 1} of {n_frames}", fontsize=11)
            if col == 0:
                ax.set_ylabel(name, fontsize=11)
    key = [f"component {k}" + ("" if share is None else f": {100 * share[k]:.0f}% of pixels")
           for k in range(len(colours))]
    figure.legend(handles=[Patch(facecolor=colours[k], edgecolor="black", label=key[k])
                           for k in range(len(colours))],
                  loc="outside lower center", ncols=min(len(colours), 6), fontsize=9,
                  title="each component's mean colour (the first frame's fit)"
                  + ("" if share is None else ", its share of the clip"))
    if title:
        figure.suptitle(utils.drawable(title), fontsize=12)
    utils.finish_figure(figure, path, show)
    return figure



# The cuts the hierarchy's figure shows besides the chosen one: each doubles
# the regions of the one before, from the coarsest split on.
CUT_REGIONS = (2, 4, 8, 16, 32, 64)


# What a hierarchy's heights are, per merge order (``merge_order.ORDERS``).
HEIGHTS = {"learned": "the probability that a merge is wrong (learned from BSDS500's humans)",
           "likelihood": "the cost of a merge (log-likelihood lost, nats per pixel, times the "
                         "border's contrast, Delta E)"}


def visualize_cuts(image, fine, merges, marked, title=None, path=None, show=False, *,
                   order="learned"):
    """Several cuts of a region hierarchy side by side, each region in its mean colour.

    Parameters
    ----------
    image : ndarray of shape (h, w, c)
    fine : ndarray of shape (h, w), int
        The fine regions (``hierarchy.build_hierarchy``).
    merges : ndarray of shape (n - 1, 4)
        Their merges.
    marked : int
        The number of regions of the chosen cut, drawn with the others and
        named in its title.
    title, path, show : see ``utils.visualize``.
    order : {"learned", "likelihood"}, default="learned"
        The merge order that made the heights, which the caption explains.

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    from skimage.segmentation import find_boundaries

    from gmmseg.hierarchy import cut, level_of

    counts = sorted({count for count in CUT_REGIONS if count < len(merges) + 1} | {marked})
    # Cut the shrunk fine map: a cut maps each fine region to its region, so
    # shrinking first draws the same pixels without cutting a 12 MP map 7 times.
    image_small, fine_small = utils.display_copy(image, fine)
    grey = image_small.shape[2] == 1
    shown = [(image_small, "input", False)]
    for count in counts:
        regions_small = cut(fine_small, merges, n_regions=count)
        painted = utils.label_means(image_small, regions_small, count)[regions_small]
        painted[find_boundaries(regions_small, mode="inner")] = 0.0
        chosen = " (chosen)" if count == marked else ""
        noun = "region" if count == 1 else "regions"
        text = f"{count} {noun}{chosen}\nlast merge at height {level_of(merges, count):.3g}"
        shown.append((painted, text, count == marked))
    h, w = image_small.shape[:2]
    ncols = min(len(shown), 4)
    nrows = int(np.ceil(len(shown) / ncols))
    figure = utils.new_figure(show, figsize=(3.0 * ncols, 3.0 * h / w * nrows + 0.5 * nrows + 0.6),
                              dpi=100, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (data, text, bold) in zip(axes, shown, strict=False):
        ax.imshow(data[:, :, 0] if grey else data, cmap="gray" if grey else None, vmin=0,
                  vmax=1, interpolation="nearest")
        ax.set_title(text, fontsize=10, fontweight="bold" if bold else None)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(shown):]:
        ax.set_axis_off()
    figure.supxlabel(f"height: {HEIGHTS[order]}; --level T applies every merge up to T",
                     fontsize=9)
    if title:
        figure.suptitle(utils.drawable(title), fontsize=12)
    utils.finish_figure(figure, path, show)
    return figure


# Pixels between the slices of a volume's figure.
SLICE_GAP = 4


def display_view(image, labels_by_k, means_by_k):
    """What the figures draw of any image: a photo as it is, others made drawable.

    A photo (1 or 3 channels, 8 or 16 bits) is returned as it is, so its
    figures do not change. Other images are scaled channel by channel from
    their 0.5th to their 99.5th percentile into [0, 1] (a 12-bit microscope
    image in 16 bits, floats), and drawn by their first three channels (two
    channels: red and green). A volume is drawn as its three middle slices
    side by side: z (y, x), y (z, x) and x (z, y); between them, and outside
    a mask, the labels are ``params.MASK_LABEL``, in no component.

    Parameters
    ----------
    image : ndarray of shape (h, w, c) or (z, y, x, c)
    labels_by_k : list of ndarray of the image's spatial shape
    means_by_k : list of ndarray of shape (K, c)
        In the image's units.

    Returns
    -------
    image, labels_by_k, means_by_k
        2-D, in the same order; the means in the units of the image returned.
    """
    from gmmseg.params import MASK_LABEL

    c = image.shape[-1]
    if image.ndim == 3 and c in (1, 3) and image.dtype in (np.uint8, np.uint16):
        return image, labels_by_k, means_by_k
    values = image.reshape(-1, c)[:: max(1, image[..., 0].size // 1_000_000)]
    lo, hi = np.percentile(values, [0.5, 99.5], axis=0)
    hi = np.where(hi > lo, hi, lo + 1)
    shown = min(c, 3)

    def scale(array):
        scaled = np.clip((array[..., :shown] - lo[:shown]) / (hi - lo)[:shown], 0, 1)
        return np.concatenate([scaled, np.zeros((*scaled.shape[:-1], 1))], -1) \
            if shown == 2 else scaled

    means_by_k = [scale(np.asarray(means, float)) for means in means_by_k]
    if image.ndim == 4:
        image = _slices(image, 0.0)
        labels_by_k = [_slices(labels[..., None], MASK_LABEL)[..., 0] for labels in labels_by_k]
    return scale(image.astype(float)), labels_by_k, means_by_k


def _slices(volume, fill):
    """A volume's three middle slices side by side, (h, w, c), ``fill`` between."""
    z, y, x, _ = volume.shape
    planes = [volume[z // 2], volume[:, y // 2], volume[:, :, x // 2]]
    height = max(plane.shape[0] for plane in planes)
    padded = []
    for plane in planes:
        block = np.full((height, plane.shape[1] + SLICE_GAP, volume.shape[-1]), fill,
                        volume.dtype)
        block[:plane.shape[0], :plane.shape[1]] = plane
        padded.append(block)
    return np.concatenate(padded, axis=1)[:, :-SLICE_GAP]
