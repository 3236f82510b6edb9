"""What a segmentation returns: ``Segmentation``, every field always present."""

import dataclasses

import numpy as np

__all__ = ["Segmentation"]


@dataclasses.dataclass(frozen=True, eq=False)
class Segmentation:
    """One image's segmentation by a mixture model.

    Attributes
    ----------
    labels : ndarray of shape (h, w) or (z, y, x), uint8
        The component of each pixel (after ``smooth``, and after the small
        regions were folded with ``min_region``); ``params.MASK_LABEL``
        outside the mask.
    model : gmmseg.MixtureModel
        The mixture that labelled it; ``model.gmm`` holds ``mus``, ``covs``,
        ``priors`` in the model's Z-scored units.
    means_rgb : ndarray of shape (K, c)
        Each component's mean colour in the image's units: the model's means
        for Z-scored RGB, else the mean colour of each label's pixels.
    log_likelihood_history : list of float
        Mean log-likelihood per pixel (nats): EM's start and every step when
        the model was fitted on this image alone, else one value, this
        image's under the model.
    warm_up_history : list of float
        EM on the colour histogram before the exact steps (empty when the
        model was not fitted on this image, or the warm-up did not run).
    converged : bool or None
        Whether EM stopped on ``tol``; None when this image was not fitted.
    n_colours : int
        Distinct colours of the image.
    regions : ndarray of shape (h, w), int32, or None
        Region ids with ``min_region``, ``merge`` or ``hierarchy``.
    fine : ndarray of shape (h, w), int32, or None
        With ``hierarchy``: the fine regions it merges.
    merges : ndarray of shape (n_fine - 1, 4), or None
        With ``hierarchy``: SciPy's linkage matrix of the merges
        (``gmmseg.cut_hierarchy(fine, merges, ...)`` takes any other cut).
    seconds : float
        Wall time of the fit (if any) and the labelling.
    mask : ndarray of bool, of the labels' shape, or None
        The voxels fitted and labelled, when a mask was given.

    Fields read as keys too, as the dicts of earlier versions were read:
    ``result["labels"]``; ``result["gmm"]``, ``result["mean"]`` and
    ``result["std"]`` are the model's.
    """

    labels: np.ndarray
    model: object
    means_rgb: np.ndarray
    log_likelihood_history: list
    warm_up_history: list
    converged: bool | None
    n_colours: int
    regions: np.ndarray | None = None
    fine: np.ndarray | None = None
    merges: np.ndarray | None = None
    seconds: float = 0.0
    mask: np.ndarray | None = None

    @property
    def fitted(self):
        """Whether EM ran on this image (False when a given model labelled it)."""
        return self.converged is not None

    @property
    def log_likelihood(self):
        """This image's mean log-likelihood per pixel (nats), the last of the history."""
        return self.log_likelihood_history[-1]

    @property
    def segments(self):
        """What a reader of the result scores: the regions if any, else the labels."""
        return self.labels if self.regions is None else self.regions

    def __getitem__(self, key):
        if key in ("gmm", "mean", "std"):
            return getattr(self.model, key)
        if key in _FIELDS:
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key):
        """Whether ``result[key]`` holds something: a field that applies (as a dict's key)."""
        try:
            return self[key] is not None
        except KeyError:
            return False

    def get(self, key, default=None):
        """``result[key]`` where it holds something, else ``default`` (as a dict's ``get``)."""
        return self[key] if key in self else default

    __iter__ = None  # not a sequence: iter() would call __getitem__(0), 1, ...


_FIELDS = {field.name for field in dataclasses.fields(Segmentation)}
