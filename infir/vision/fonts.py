"""The TrueType fonts matplotlib ships (DejaVu Sans/Serif/Mono and their styles), found offline.

Every generator draws from this one table so fonts vary the same way everywhere and no font is
ever downloaded: the files come with the matplotlib wheel. Loaded fonts and glyph coverage are
cached because the renderers ask for many sizes of the same few faces.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
from PIL import ImageFont

# key -> file name under matplotlib's fonts/ttf directory
FONT_FILES: dict[str, str] = {
    "sans": "DejaVuSans.ttf",
    "sans-bold": "DejaVuSans-Bold.ttf",
    "sans-oblique": "DejaVuSans-Oblique.ttf",
    "sans-bold-oblique": "DejaVuSans-BoldOblique.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif-bold": "DejaVuSerif-Bold.ttf",
    "serif-italic": "DejaVuSerif-Italic.ttf",
    "serif-bold-italic": "DejaVuSerif-BoldItalic.ttf",
    "mono": "DejaVuSansMono.ttf",
    "mono-bold": "DejaVuSansMono-Bold.ttf",
    "mono-oblique": "DejaVuSansMono-Oblique.ttf",
    "mono-bold-oblique": "DejaVuSansMono-BoldOblique.ttf",
}
FONT_KEYS: tuple[str, ...] = tuple(FONT_FILES)


def font_dir() -> Path:
    """matplotlib's bundled TrueType directory."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def font_path(key: str) -> Path:
    """Path of a font by key; clear error for an unknown key or a broken matplotlib install."""
    try:
        name = FONT_FILES[key]
    except KeyError:
        raise KeyError(f"unknown font key {key!r}; known: {', '.join(FONT_KEYS)}") from None
    path = font_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"font {key!r} expected at {path} (matplotlib install incomplete?)")
    return path


@functools.lru_cache(maxsize=4096)
def load_font(key: str, size_px: int) -> ImageFont.FreeTypeFont:
    """A PIL font at ``size_px`` pixels (em size); cached, loading is the slow part of rendering."""
    if size_px < 1:
        raise ValueError(f"font size must be >= 1 px, got {size_px}")
    return ImageFont.truetype(str(font_path(key)), size_px)


@functools.lru_cache(maxsize=None)
def _charmap(key: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(str(font_path(key))).get_charmap())


def missing_glyphs(text: str, key: str) -> list[str]:
    """Characters of ``text`` the font cannot draw (they would render as boxes); whitespace is fine."""
    covered = _charmap(key)
    return sorted({c for c in text if not c.isspace() and ord(c) not in covered})


@functools.lru_cache(maxsize=4096)
def cap_height(key: str, size_px: int) -> int:
    """Ink height of "H" at this size: the glyph height legibility is judged by."""
    left, top, right, bottom = load_font(key, size_px).getbbox("H", anchor="ls")
    return bottom - top
