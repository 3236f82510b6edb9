"""Choosing k: model-selection rules over a sweep of fits, and the sweep's table."""

import itertools

__all__ = ["CRITERIA", "K_GAIN", "K_MAX", "choose_k", "selection_reason", "sweep_table"]

K_MAX = 10  # the largest k that --k auto tries unless k_max says otherwise

# --k auto's default rule: keep the smallest K whose mean log-likelihood per
# pixel grows by less than K_GAIN nats when one more component is added. BIC
# (and AIC) keep falling up to the largest K on photos: colour noise is not
# Gaussian, so each extra component buys more likelihood than its penalty,
# counted over pixels or over distinct colours alike. On the 30 BSDS500
# training images (bench/bench_bsds.py, docs/quality.md), each image's K
# chosen from its own sweep of 2..12 by the gain rule scored PRI 0.730 / VoI
# 2.55 bits against the humans, the lowest BIC 0.694 / 3.38, and the best
# single K for the whole set 0.706 / 2.74; thresholds of 0.02, 0.1 and 0.2
# nats did worse.
K_GAIN = 0.05
CRITERIA = ("gain", "bic", "aic")


def choose_k(records, criterion="gain", gain=K_GAIN):
    """The record of the K a model-selection criterion prefers.

    Parameters
    ----------
    records : list of dict
        One record per K (see ``summary``), in increasing K.
    criterion : {"gain", "bic", "aic"}, default="gain"
        "gain": the first K whose next record's ``log_likelihood`` is less than
        ``gain`` higher (the last K if every step gains more); "bic" and
        "aic": the lowest value wins.
    gain : float, default=K_GAIN
        Nats per pixel.

    Returns
    -------
    record : dict
        The chosen K's record.
    """
    if criterion == "gain":
        for record, following in itertools.pairwise(records):
            if following["log_likelihood"] - record["log_likelihood"] < gain:
                return record
        return records[-1]
    return min(records, key=lambda record: record[criterion])


def sweep_table(records):
    """A Markdown table of the fits of one image, one row per K.

    Parameters
    ----------
    records : list of dict
        One record per K (see ``segmentation_GMM.summary``).

    Returns
    -------
    table : str
        Columns k, log-likelihood per pixel, BIC, AIC, EM iterations (warm-up
        on the colour histogram + on the exact colours), seconds; with scores
        against human segmentations (``truth``), also PRI and VoI (bits); with
        regions, their number.
    """
    scored = all("truth" in r for r in records)
    regions = all("n_regions" in r for r in records)
    header = ["k", "log-likelihood / pixel", "BIC", "AIC", "EM iterations", "seconds"]
    header += ["regions"] * regions + ["PRI", "VoI (bits)"] * scored
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for r in records:
        iterations = (f"{r['warm_up_iterations']} + {r['iterations']}"
                      if r.get("warm_up_iterations") else f"{r['iterations']}")
        cells = [f"{r['k']}", f"{r['log_likelihood']:.4f}", f"{r['bic']:.1f}", f"{r['aic']:.1f}",
                 iterations, f"{r['seconds']:.2f}"]
        if regions:
            cells.append(f"{r['n_regions']}")
        if scored:
            cells += [f"{r['truth']['pri']:.4f}", f"{r['truth']['voi']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def selection_reason(record):
    """One sentence on why ``--k auto`` kept its K."""
    selection = record["selection"]
    ks, criterion = selection["k"], selection["criterion"]
    if criterion == "gain":
        reason = (f"--k auto kept k={record['k']}: the first of k={ks[0]}..{ks[-1]} whose "
                  f"log-likelihood grows by less than {K_GAIN} nats/pixel with one more "
                  f"component")
        if record["k"] == ks[-1]:
            reason += " (none did; --k-max raises the limit)"
        return reason
    reason = (f"--k auto kept k={record['k']}: the lowest {criterion.upper()} of "
              f"k={ks[0]}..{ks[-1]}")
    if record["k"] == ks[-1]:
        reason += (" (still falling at the largest k tried: colour noise is not "
                   "Gaussian; --k-max raises the limit)")
    return reason
