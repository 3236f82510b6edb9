"""The segmentation options: every one once, with its type, default, bound and check.

An ``Options`` is built once, checked as it is built, and travels whole
through ``gmmseg.segment``, ``gmmseg.fit``, the model, ``segment_file``, the
batch and the command line; a record's option fields are its ``record()``.
Bounds that depend on the image (``smooth`` and ``min_region`` by its size,
CIELAB on colour only) are ``check_for``'s, run by the entries on each image.
"""

import dataclasses
import math

import segmentation_GMM as sg
from gmmseg.features import COLOR_SPACES
from gmmseg.merge_order import ORDERS as MERGE_ORDERS
from gmmseg.params import (
    MAX_ITER,
    MAX_SEED,
    MRF_MAX,
    SPATIAL_MAX,
    ParameterError,
    check_bool,
    check_choice,
    check_cut,
    check_float,
    check_int,
)

__all__ = ["Options", "make_options"]


def _option(default, stage, record=""):
    """A field of ``Options``: its default, its stage, its record's key ("": its name)."""
    return dataclasses.field(default=default, metadata={"stage": stage, "record": record})


# init=False: the generated __init__ answers an unknown name with a TypeError;
# ``__init__`` below names it, as every other check does.
@dataclasses.dataclass(frozen=True, kw_only=True, init=False)
class Options:
    """How an image is segmented, beyond the number of components.

    The defaults are the lab's segmentation: Z-scored colours, k-means seeding,
    EM, each pixel given its most likely component.

    Parameters
    ----------
    max_iter : int, default=100
        At most this many EM steps in all, the warm-up's included (1 ..
        ``params.MAX_ITER``).
    tol : float, default=1e-4
        EM stops when the mean log-likelihood per pixel changes by less (nats).
    random_state : int, default=0
        Seeds k-means++ (and the pixel sample of ``spatial``); 0 .. 2**32 - 1.
    color_space : {"rgb", "lab"}, default="rgb"
        The colour features (``features.colour_features``); "lab" needs a
        colour image.
    spatial : float, default=0
        Weight of each pixel's Z-scored row and column appended to its features
        (0 .. ``params.SPATIAL_MAX``); 0 leaves them out.
    mrf : float, default=0
        Weight beta of a Potts prior inside EM (``gmmseg.mrf``, mean-field,
        as FAST and Atropos): each pixel's log-prior of a component gains
        beta times its 4 (6 in 3-D) neighbours' responsibilities for it
        (0 .. ``params.MRF_MAX``). The fit without it takes at most half of
        ``max_iter``, the prior's steps the rest. Not with ``spatial``.
    smooth : float, default=0
        Sigma in pixels of the Gaussian that blurs each component's
        responsibilities before the argmax (``features.smoothed_argmax``); at
        most a quarter of the image's shorter side.
    min_region : int, default=0
        If above 0, split the labels into connected regions and fold regions of
        fewer pixels into their neighbours (``regions.connected_regions``).
    merge : float, default=0
        If above 0, also merge touching regions whose mean colours differ by
        less than this CIELAB Delta E (``regions.merge_regions``).
    hierarchy : bool, default=False
        Merge the connected regions pair by pair into one
        (``hierarchy.build_hierarchy``) and cut it at
        ``hierarchy.DEFAULT_LEVELS`` of its ``merge_order``, or where
        ``n_regions`` or ``level`` says (either sets ``hierarchy``; not with
        ``merge``). ``min_region`` is
        then at least ``hierarchy.fine_min_region`` of the image.
    n_regions : int, optional
        Cut the hierarchy into this many regions (fewer only if there are
        fewer fine regions).
    level : float, optional
        Cut the hierarchy at this height (the order's units: for
        ``"learned"`` the probability that the merges above it are wrong).
    merge_order : {"learned", "likelihood"}, optional
        The hierarchy's cost of a merge (``gmmseg.merge_order``): a logistic
        regression trained on BSDS500's human segmentations (with
        ``hierarchy``, the default), or the mixture's log-likelihood lost
        times the border's contrast. Only with ``hierarchy``; None without.

    Raises
    ------
    ValueError
        ``params.ParameterError`` naming the first bad parameter.

    Examples
    --------
    >>> from gmmseg.options import Options
    >>> Options(n_regions=5).hierarchy
    True
    >>> Options(smooth=-1)
    Traceback (most recent call last):
    ...
    gmmseg.params.ParameterError: smooth must be 0 or more, not -1
    """

    # Each option's stage: "fit" (how EM runs), "features" (what it is fitted on;
    # a fitted model fixes both), "labelling" (how labels become regions, for
    # any image a model labels).
    max_iter: int = _option(100, "fit")
    tol: float = _option(sg.TOL, "fit")
    # Recorded by the lab's summary as "seed", beside the fit it seeded.
    random_state: int = _option(0, "fit", record=None)
    color_space: str = _option("rgb", "features")
    spatial: float = _option(0.0, "features")
    mrf: float = _option(0.0, "fit")
    smooth: float = _option(0.0, "labelling")
    min_region: int = _option(0, "labelling")
    merge: float = _option(0.0, "labelling")
    hierarchy: bool = _option(False, "labelling")
    # Recorded as "regions", the name records have always given it.
    n_regions: int | None = _option(None, "labelling", record="regions")
    level: float | None = _option(None, "labelling")
    merge_order: str | None = _option(None, "labelling")

    def __init__(self, *args, **options):
        if args:
            raise ParameterError("options", "Options takes keyword arguments only, not "
                                            f"{args[0]!r}")
        fields = dataclasses.fields(self)
        unknown = sorted(set(options) - {field.name for field in fields})
        if unknown:
            raise ParameterError(unknown[0], f"{unknown[0]} is not an option; the options are "
                                             f"{', '.join(field.name for field in fields)}")
        for field in fields:
            object.__setattr__(self, field.name, options.get(field.name, field.default))
        self._check()

    def _check(self):
        # Any size is allowed here; ``check_for`` bounds them by the image.
        checked = {
            "max_iter": check_int(self.max_iter, "max_iter", 1, MAX_ITER),
            "tol": check_float(self.tol, "tol", 0.0, include_low=False),
            "random_state": check_int(self.random_state, "random_state", 0, MAX_SEED),
            "color_space": check_choice(self.color_space, "color_space", COLOR_SPACES),
            "spatial": check_float(self.spatial, "spatial", 0.0, SPATIAL_MAX),
            "mrf": check_float(self.mrf, "mrf", 0.0, MRF_MAX),
            "smooth": check_float(self.smooth, "smooth", 0.0),
            "min_region": check_int(self.min_region, "min_region", 0),
            "merge": check_float(self.merge, "merge", 0.0),
            "hierarchy": check_bool(self.hierarchy, "hierarchy"),
        }
        checked["merge_order"] = self.merge_order
        if self.merge_order is not None:
            check_choice(self.merge_order, "merge_order", MERGE_ORDERS)
        checked["n_regions"], checked["level"] = check_cut(self.n_regions, self.level, None)
        checked["hierarchy"] |= self.n_regions is not None or self.level is not None
        if checked["spatial"] > 0 and checked["mrf"] > 0:
            raise ParameterError(("spatial", "mrf"), "spatial and mrf both weigh a pixel's "
                                                     "place; give one")
        if checked["merge_order"] is not None and not checked["hierarchy"]:
            raise ParameterError(("merge_order", "hierarchy"), "merge_order needs hierarchy: "
                                 "it orders the merges of a hierarchy")
        if checked["hierarchy"] and checked["merge_order"] is None:
            checked["merge_order"] = "learned"
        if checked["hierarchy"] and checked["merge"] > 0:
            raise ParameterError(("merge", "hierarchy"),
                                 "merge and hierarchy both merge regions; give one")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def check_for(self, shape, masked=False):
        """Check the bounds that depend on the image.

        Parameters
        ----------
        shape : tuple of int
            The image's (h, w, c), or a volume's (z, y, x, c).
        masked : bool, default=False
            Whether a mask says which pixels to fit.

        Raises
        ------
        ValueError
            ``params.ParameterError``: ``smooth`` beyond a quarter of the
            shorter side (where every pixel already weighs the evidence of the
            whole image, and the blur's cost grows with sigma), ``min_region``
            or ``n_regions`` beyond the pixels, CIELAB of an image without 3
            channels; ``spatial`` and the regions' options on a volume or
            with a mask, which they do not take yet.
        """
        *sides, c = shape
        n_pixels = math.prod(sides)
        check_float(self.smooth, "smooth", 0.0, max(1.0, min(sides) / 4))
        check_int(self.min_region, "min_region", 0, n_pixels)
        check_cut(self.n_regions, self.level, n_pixels)
        if self.color_space == "lab" and c != 3:
            kind = "is greyscale" if c == 1 else f"has {c} channels"
            raise ParameterError("color_space", f"color_space lab needs a colour image; "
                                                f"this one {kind}")
        if len(sides) == 3 or masked:
            what = "a volume" if len(sides) == 3 else "a mask"
            for name in ("spatial", "min_region", "merge", "hierarchy"):
                if getattr(self, name):
                    raise ParameterError(name, f"{name} is for whole 2-D images, not yet "
                                               f"with {what} (smooth works there)")

    @property
    def regions(self):
        """Whether the labels are split into regions (``min_region``, ``merge``, ``hierarchy``)."""
        return self.min_region > 0 or self.merge > 0 or self.hierarchy

    @classmethod
    def recorded(cls):
        """The record's name of each recorded option, in the record's order: {field: key}."""
        names = {}
        for field in dataclasses.fields(cls):
            key = field.metadata["record"]
            if key is not None:
                names[field.name] = key or field.name
        return names

    @classmethod
    def names(cls, *stages):
        """The options of some stages ("fit", "features", "labelling"), in order."""
        return tuple(field.name for field in dataclasses.fields(cls)
                     if field.metadata["stage"] in stages)

    def record(self):
        """The options as a record keeps them: {key: value}, JSON-ready."""
        return {key: getattr(self, name) for name, key in self.recorded().items()}

    def replace(self, **changes):
        """A copy with some options changed, checked again."""
        return dataclasses.replace(self, **changes)


def make_options(options=None, **overrides):
    """One ``Options`` from an optional base and keyword options.

    Parameters
    ----------
    options : Options, optional
    **overrides
        Any ``Options`` field; an unknown name is a ``ParameterError``.

    Returns
    -------
    options : Options
    """
    if options is not None and not isinstance(options, Options):
        raise ParameterError("options", f"options must be a gmmseg Options, not "
                                        f"{type(options).__name__}")
    if options is None:
        return Options(**overrides)
    return options.replace(**overrides) if overrides else options
