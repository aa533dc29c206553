"""Make ``import torchvision`` work on the CPU-only torch wheel, in every interpreter of the environment.

Why this exists: torchvision 0.28.0 on PyPI is a CUDA build. On the CPU torch wheel its C++ extension
does not load, so ``torchvision::nms``/``qnms`` are never registered and torchvision's Python layer
(imported by transformers, timm and open_clip) fails at import with "operator torchvision::nms does
not exist". Declaring the two missing operator schemas first lets the import succeed; the compiled ops
stay unavailable (decode images with PIL, do NMS elsewhere) and calling them raises a clear error.

This module ships with ``infir_torchvision_guard.pth``, which site.py runs at interpreter start-up.
It only puts an import hook in place (no torch import, so start-up stays cheap); the guard runs the
first time anything looks for torchvision. That is what makes a model exported by infir load in plain
``transformers`` (a notebook, lm-eval) without ``import infir``.
"""

import sys  # the only import at start-up: every interpreter of the environment pays for this module

_MISSING_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_guard_library = None  # kept alive: dropping the Library object unregisters the schemas


def _load_torchvision_extension(torch) -> bool:
    """Load torchvision's compiled ops as torchvision itself would; False where they cannot load here.

    Done before declaring anything so that a torch/torchvision pair that matches (a CUDA machine)
    registers its real ops and the guard stays out of the way.
    """
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec("torchvision")  # not sys.meta_path: no re-entry
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        found = importlib.machinery.FileFinder(
            folder, (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
        ).find_spec("_C")
        if found is not None and found.origin:
            try:
                torch.ops.load_library(found.origin)
                return True
            except (ImportError, OSError):
                return False
    return False


def install_torchvision_op_guard() -> bool:
    """Declare torchvision's op schemas where its extension cannot provide them; True if it had to."""
    global _guard_library
    if _guard_library is not None:
        return True
    try:
        import torch
    except ImportError:  # no torch in this environment: nothing to guard
        return False
    try:
        torch.ops.torchvision.nms  # noqa: B018 - attribute access is the probe
        return False
    except (AttributeError, RuntimeError):
        pass
    if _load_torchvision_extension(torch) and hasattr(torch.ops.torchvision, "nms"):
        return False
    _guard_library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _MISSING_OPS:
        try:
            _guard_library.define(schema)
        except RuntimeError:  # already defined by a partially loaded extension
            continue
    return True


class _TorchvisionImportHook:
    """A ``sys.meta_path`` entry that runs the guard just before torchvision is first located.

    It finds nothing itself (returns None), so the ordinary finders import torchvision afterwards.
    It stays in ``sys.meta_path`` once done (removing an entry while the import system iterates the
    list would skip the next finder); after the first time it costs one string comparison per import.
    """

    done = False

    def find_spec(self, fullname: str, path=None, target=None) -> None:
        if fullname == "torchvision" and not self.done:
            self.done = True  # first, so the torch import below cannot re-enter
            install_torchvision_op_guard()
        return None

    def invalidate_caches(self) -> None:
        pass


def install_import_hook() -> None:
    """Put the hook first in ``sys.meta_path``, once per interpreter (the .pth and ``import infir`` both call it)."""
    if any(isinstance(finder, _TorchvisionImportHook) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _TorchvisionImportHook())
