"""infir: reproducing the InfiR recipe for small reasoning language models."""

__version__ = "0.1.0"
