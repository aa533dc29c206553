"""infir: reproducing the InfiR recipe for small reasoning language models.

Importing the package first installs the torchvision op guard (see ``infir.env``):
transformers, timm and open_clip all import torchvision, which fails on CPU torch
without it.
"""

from infir import env as _env  # noqa: F401  (side effect: torchvision op guard)

__version__ = "0.1.0"
