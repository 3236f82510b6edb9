"""Image and video segmentation with a Gaussian mixture: everything beyond the lab.

The lab itself (load, k-means seeding, the ``GMM`` and its EM) is
``segmentation_GMM``; this package builds on it, one concern a module:

===============  ==========================================================
``pipeline``     ``segment`` (the public entry) and ``segment_file``
``model``        ``fit``, ``MixtureModel`` (segment, save), ``load_model``
``options``      ``Options``: every segmentation option, checked once
``result``       ``Segmentation``, what ``segment`` returns
``params``       the checks and bounds of every parameter
``outputs``      output names, provenance, collision checks, a fit's files
``readers``      TIFF stacks, NIfTI, 16-bit colour, the axes of any array, masks
``features``     CIELAB, pixel position, smoothing of responsibilities
``mrf``          the Potts prior inside EM (mean-field)
``regions``      connected regions, folding small ones, merging similar ones
``hierarchy``    the regions merged pair by pair into one; cuts of it; its file
``merge_order``  the hierarchy's order: features of a pair, the learned cost
``scores``       PRI, VoI (bits) and Covering against human segmentations
``selection``    choosing k, the sweep's table
``video``        one mixture tracked through a clip (``segment_video``)
``video_io``     reading and writing clips frame by frame
``tasks``        tasks on this process, worker processes or Dask, with progress
``cli``          the command line
===============  ==========================================================

Use::

    import gmmseg
    result = gmmseg.segment(image, n_components=4)   # an array, PIL image or path
    result.labels          # (h, w) uint8, the component of each pixel
    result.model.gmm.mus   # the fitted mixture: .mus, .covs, .priors

    model = gmmseg.fit([image_a, image_b], 4)         # one mixture for many images
    model.segment(image_c).labels                     # no refit
    model.save("colours.json"); gmmseg.load_model("colours.json")

Every parameter is checked at the entry; a bad one raises ``ValueError``
(``gmmseg.ParameterError``) naming it. The names are loaded on first use, so
importing the package is
instant.
"""

import importlib

__all__ = [
    "MixtureModel",
    "Options",
    "ParameterError",
    "Segmentation",
    "choose_k",
    "cut_hierarchy",
    "fit",
    "load_hierarchy",
    "load_model",
    "load_truth",
    "segment",
    "segment_file",
    "segment_video",
    "truth_scores",
]

_WHERE = {"segment": "pipeline", "segment_file": "pipeline", "segment_video": "video",
          "truth_scores": "scores", "load_truth": "scores", "choose_k": "selection",
          "cut_hierarchy": "hierarchy", "load_hierarchy": "hierarchy", "fit": "model",
          "load_model": "model", "MixtureModel": "model", "Options": "options",
          "Segmentation": "result", "ParameterError": "params"}

# Names that say more at the package's level than in their module.
_RENAMED = {"cut_hierarchy": "cut"}


def __getattr__(name):
    if name in _WHERE:
        module = importlib.import_module(f"gmmseg.{_WHERE[name]}")
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'gmmseg' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
