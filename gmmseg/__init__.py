"""Image and video segmentation with a Gaussian mixture: everything beyond the lab.

The lab itself (load, k-means seeding, the ``GMM`` and its EM) is
``segmentation_GMM``; this package builds on it, one concern a module:

=============  ==========================================================
``pipeline``   ``segment`` (the public entry) and ``segment_file``
``params``     every parameter's check, shared by the entries and the CLI
``features``   CIELAB, pixel position, smoothing of responsibilities
``regions``    connected regions, folding small ones, merging similar ones
``hierarchy``  the regions merged pair by pair into one; cuts of it; its file
``scores``     PRI and VoI (bits) against human segmentations
``selection``  choosing k, the sweep's table
``video``      one mixture tracked through a clip (``segment_video``)
``video_io``   reading and writing clips frame by frame
``cli``        the command line
=============  ==========================================================

Use::

    import gmmseg
    result = gmmseg.segment(image, n_components=4)   # an array or a path
    result["labels"]       # (h, w) uint8, the component of each pixel
    result["gmm"].mus      # the fitted mixture: .mus, .covs, .priors

Every parameter is checked at the entry; a bad one raises ``ValueError``
naming it. The names are loaded on first use, so importing the package is
instant.
"""

import importlib

__all__ = [
    "choose_k",
    "cut_hierarchy",
    "load_hierarchy",
    "load_truth",
    "segment",
    "segment_file",
    "segment_video",
    "truth_scores",
]

_WHERE = {"segment": "pipeline", "segment_file": "pipeline", "segment_video": "video",
          "truth_scores": "scores", "load_truth": "scores", "choose_k": "selection",
          "cut_hierarchy": "hierarchy", "load_hierarchy": "hierarchy"}

# Names that say more at the package's level than in their module.
_RENAMED = {"cut_hierarchy": "cut"}


def __getattr__(name):
    if name in _WHERE:
        module = importlib.import_module(f"gmmseg.{_WHERE[name]}")
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'gmmseg' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
