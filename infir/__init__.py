"""infir: reproducing the InfiR recipe for small reasoning language models.

Importing the package makes sure the torchvision op guard's import hook is in place (see
``infir.env``): transformers, timm and open_clip all import torchvision, which fails on CPU torch
without it. The hook is lazy, so ``import infir`` loads neither torch nor torchvision.
"""

from infir import env as _env  # noqa: F401  (side effect: torchvision op guard import hook)

__version__ = "0.1.0"
