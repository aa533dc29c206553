"""Seeded text and formula images for InfiR-VL's text-rendering phase (transcription, arithmetic).

The model has to read what it is shown, so every image is checked to be readable before it
is returned: the text is laid out with the font's own ink metrics and never clipped (the
font shrinks, then lines wrap at spaces, then long words break; :class:`TextDoesNotFit` if
nothing fits), the text/background pair passes a WCAG contrast ratio, and with
``legible_at=L`` the capital-letter height stays >= ``legible_px`` after the image is resized
to ``L x L`` (judged on the more-shrunk axis, so glyphs are not squashed either). Fonts are
the DejaVu faces matplotlib ships (:mod:`infir.vision.fonts`); formulas go through
matplotlib's mathtext Agg rasteriser, so no LaTeX install is needed. Everything is drawn from
the caller's ``random.Random``: same seed, same pixels.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from infir.vision.fonts import FONT_KEYS, cap_height, load_font, missing_glyphs

RGB = tuple[int, int, int]

TRANSCRIBE_QUESTION = "Transcribe the text in the image."
ARITHMETIC_QUESTION = "What is the answer to the problem in the image?"
FORMULA_QUESTION = "Write the formula in the image in LaTeX."

ALIGNMENTS = ("left", "center", "right")
MATH_FONTSETS = ("dejavusans", "dejavuserif", "cm", "stix", "stixsans")
MAX_FONT_PX = 400  # upper end of the font-size search; far above any canvas the ranges allow
COLOUR_TRIES = 64  # random colour pairs tried before falling back to black/white text


class TextDoesNotFit(ValueError):
    """The text cannot be drawn on any canvas drawn from the ranges at the minimum font size."""


@dataclass(frozen=True)
class RenderedSample:
    """One image with the text it shows and the question/answer pair a VLM trains on."""

    image: Image.Image
    text: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- colours


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black .. 1 white)."""

    def channel(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio (1 .. 21); 4.5 is the usual bar for readable body text."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def pick_colours(rng: random.Random, min_contrast: float = 4.5) -> tuple[RGB, RGB]:
    """Random (text, background) pair with contrast >= ``min_contrast``.

    Any background has contrast >= 4.58 against black or white, so bars up to that always
    succeed; a higher bar that no random pair met raises rather than returning unreadable text.
    """
    if not 1.0 <= min_contrast <= 21.0:
        raise ValueError(f"min_contrast must be in [1, 21], got {min_contrast}")
    style = rng.random()
    if style < 0.4:  # paper-like light background
        bg = tuple(rng.randint(200, 255) for _ in range(3))
    elif style < 0.7:  # dark mode
        bg = tuple(rng.randint(0, 60) for _ in range(3))
    else:
        bg = tuple(rng.randint(0, 255) for _ in range(3))
    bg = (bg[0], bg[1], bg[2])
    for _ in range(COLOUR_TRIES):
        fg = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        if contrast_ratio(fg, bg) >= min_contrast:
            return fg, bg
    fg = max(((0, 0, 0), (255, 255, 255)), key=lambda c: contrast_ratio(c, bg))
    if contrast_ratio(fg, bg) < min_contrast:
        raise ValueError(f"no text colour reaches contrast {min_contrast} on background {bg}")
    return fg, bg


def add_noise(image: Image.Image, rng: random.Random, std: float) -> Image.Image:
    """Light Gaussian pixel noise (seeded from ``rng``), the sensor/compression grain of real scans."""
    gen = np.random.default_rng(rng.getrandbits(64))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + gen.normal(0.0, std, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode=image.mode)


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Layout:
    """Lines of text at one font size with their ink boxes relative to the first baseline."""

    font_px: int
    lines: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int] | None, ...]  # per line (l, t, r, b) at anchor "ls"
    pitch: int
    ink: tuple[int, int, int, int]  # union box (l, t, r, b) of all lines

    @property
    def width(self) -> int:
        return self.ink[2] - self.ink[0]

    @property
    def height(self) -> int:
        return self.ink[3] - self.ink[1]


def _ink_width(font: ImageFont.FreeTypeFont, text: str) -> int:
    if not text.strip():
        return 0
    left, _, right, _ = font.getbbox(text, anchor="ls")
    return right - left


def _break_word(word: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str] | None:
    """Split an over-long word into pieces that fit; None if a single character is too wide."""
    pieces: list[str] = []
    current = ""
    for char in word:
        if _ink_width(font, current + char) <= max_width:
            current += char
        elif not current:
            return None
        else:
            pieces.append(current)
            current = char
            if _ink_width(font, current) > max_width:
                return None
    pieces.append(current)
    return pieces


def wrap_text(text: str, font: ImageFont.FreeTypeFont, max_width: int, *, wrap: bool = True) -> list[str] | None:
    """Greedy word wrap to ``max_width`` ink pixels, keeping hard newlines; None if it cannot fit."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if _ink_width(font, paragraph) <= max_width:
            lines.append(paragraph)
            continue
        if not wrap:
            return None
        current: str | None = None
        for word in paragraph.split(" "):
            candidate = word if current is None else f"{current} {word}"
            if _ink_width(font, candidate) <= max_width:
                current = candidate
                continue
            if current is not None:
                lines.append(current)
            if _ink_width(font, word) <= max_width:
                current = word
            else:
                pieces = _break_word(word, font, max_width)
                if pieces is None:
                    return None
                lines.extend(pieces[:-1])
                current = pieces[-1]
        lines.append(current or "")
    return lines


def _layout(text: str, font_key: str, font_px: int, max_w: int, max_h: int, spacing: float,
            wrap: bool) -> _Layout | None:
    """Wrap and measure ``text`` at one size; None if it overflows ``max_w`` x ``max_h``."""
    font = load_font(font_key, font_px)
    lines = wrap_text(text, font, max_w, wrap=wrap)
    if lines is None:
        return None
    ascent, descent = font.getmetrics()
    pitch = max(1, round((ascent + descent) * spacing))
    boxes: list[tuple[int, int, int, int] | None] = []
    union: list[int] | None = None
    for i, line in enumerate(lines):
        if not line.strip():
            boxes.append(None)
            continue
        left, top, right, bottom = font.getbbox(line, anchor="ls")
        boxes.append((left, top, right, bottom))
        shifted = [left, top + i * pitch, right, bottom + i * pitch]
        union = shifted if union is None else [min(union[0], shifted[0]), min(union[1], shifted[1]),
                                               max(union[2], shifted[2]), max(union[3], shifted[3])]
    if union is None:
        raise ValueError(f"nothing to draw: text {text!r} has no visible characters")
    result = _Layout(font_px, tuple(lines), tuple(boxes), pitch, (union[0], union[1], union[2], union[3]))
    if result.width > max_w or result.height > max_h:
        return None
    return result


def legible_font_px(font_key: str, canvas: tuple[int, int], legible_at: int, legible_px: int = 12) -> int:
    """Smallest font size with capital height >= ``legible_px`` after resizing the canvas to ``legible_at`` square."""
    scale = legible_at / max(canvas)  # the axis that shrinks most decides
    lo, hi = 1, MAX_FONT_PX * 4
    while lo < hi:
        mid = (lo + hi) // 2
        if cap_height(font_key, mid) * scale >= legible_px:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _largest_fitting(text: str, font_key: str, lo: int, hi: int, max_w: int, max_h: int,
                     spacing: float, wrap: bool) -> _Layout | None:
    """Binary search for the largest font size in [lo, hi] that fits; None if ``lo`` does not."""
    best = _layout(text, font_key, lo, max_w, max_h, spacing, wrap)
    if best is None:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        candidate = _layout(text, font_key, mid, max_w, max_h, spacing, wrap)
        if candidate is None:
            hi = mid - 1
        else:
            best, lo = candidate, mid
    return best


def _check_range(name: str, value: tuple[int, int], minimum: int = 1) -> None:
    if len(value) != 2 or not minimum <= value[0] <= value[1]:
        raise ValueError(f"{name} must be (low, high) with {minimum} <= low <= high, got {value!r}")


# ----------------------------------------------------------------------------- rendering


def _render_text(
    text: str,
    rng: random.Random,
    *,
    width_range: tuple[int, int] = (64, 256),
    height_range: tuple[int, int] = (64, 256),
    min_font_px: int = 10,
    max_font_px: int | None = None,
    fonts: Sequence[str] = FONT_KEYS,
    legible_at: int | None = None,
    legible_px: int = 12,
    min_contrast: float = 4.5,
    align: str | None = None,
    wrap: bool = True,
    margin_px: int = 2,
    noise_prob: float = 0.3,
    noise_std: tuple[float, float] = (2.0, 6.0),
    attempts: int = 24,
) -> tuple[Image.Image, dict[str, Any]]:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text to render must be a non-empty string, got {text!r}")
    _check_range("width_range", width_range)
    _check_range("height_range", height_range)
    if min_font_px < 1 or (max_font_px is not None and max_font_px < min_font_px):
        raise ValueError(f"font size bounds invalid: min_font_px={min_font_px}, max_font_px={max_font_px}")
    if align is not None and align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS} or None, got {align!r}")
    if not fonts:
        raise ValueError("fonts must name at least one font key")
    for key in fonts:
        missing = missing_glyphs(text, key)
        if missing:
            raise ValueError(f"font {key!r} has no glyph for {''.join(missing)!r} in text {text!r}")

    for attempt in range(attempts):
        width = rng.randint(*width_range)
        height = rng.randint(*height_range)
        font_key = rng.choice(list(fonts))
        spacing = rng.uniform(1.0, 1.3)
        max_w, max_h = width - 2 * margin_px, height - 2 * margin_px
        if max_w < 1 or max_h < 1:
            continue
        need = min_font_px
        if legible_at is not None:
            need = max(need, legible_font_px(font_key, (width, height), legible_at, legible_px))
        top = min(max_font_px or MAX_FONT_PX, MAX_FONT_PX, height)
        if need > top:
            continue
        biggest = _largest_fitting(text, font_key, need, top, max_w, max_h, spacing, wrap)
        if biggest is None:
            continue
        # Vary the size below the largest fit, but not so small the text becomes a speck.
        chosen_px = rng.randint(max(need, math.ceil(0.6 * biggest.font_px)), biggest.font_px)
        layout = _layout(text, font_key, chosen_px, max_w, max_h, spacing, wrap) or biggest
        break
    else:
        raise TextDoesNotFit(
            f"text {text!r} does not fit any of {attempts} canvases from width_range={width_range}, "
            f"height_range={height_range} at font >= {min_font_px} px"
            + (f" legible at {legible_at} px (cap height >= {legible_px} px)" if legible_at else "")
            + "; allow larger canvases, a smaller minimum font or shorter text"
        )

    fg, bg = pick_colours(rng, min_contrast)
    line_align = align or rng.choice(ALIGNMENTS)
    font = load_font(font_key, layout.font_px)
    image = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(image)
    # Place the block's ink box anywhere inside the margins, then each line inside the block.
    block_x = margin_px + rng.randint(0, max_w - layout.width)
    block_y = margin_px + rng.randint(0, max_h - layout.height)
    for i, (line, box) in enumerate(zip(layout.lines, layout.boxes)):
        if box is None:
            continue
        slack = layout.width - (box[2] - box[0])
        shift = {"left": 0, "center": slack // 2, "right": slack}[line_align]
        origin_x = block_x + shift - box[0]
        baseline_y = block_y - layout.ink[1] + i * layout.pitch
        draw.text((origin_x, baseline_y), line, font=font, fill=fg, anchor="ls")
    ink_box = (block_x, block_y, block_x + layout.width, block_y + layout.height)

    noise = 0.0
    if rng.random() < noise_prob:
        noise = rng.uniform(*noise_std)
        image = add_noise(image, rng, noise)
    meta = {
        "font": font_key,
        "font_px": layout.font_px,
        "cap_height_px": cap_height(font_key, layout.font_px),
        "lines": list(layout.lines),
        "align": line_align,
        "text_rgb": fg,
        "background_rgb": bg,
        "contrast": contrast_ratio(fg, bg),
        "ink_box": ink_box,
        "noise_std": noise,
        "attempts": attempt + 1,
    }
    return image, meta


def render_text(text: str, rng: random.Random, **options: Any) -> Image.Image:
    """Draw ``text`` on a random canvas (size, font, colours, alignment, position, light noise).

    The text is never clipped: the largest font that fits (wrapping at spaces, breaking long
    words) bounds a random size >= ``min_font_px`` (and >= the ``legible_at`` minimum); canvases
    are redrawn up to ``attempts`` times before :class:`TextDoesNotFit`. ``margin_px`` keeps ink
    off the border. ``\\n`` in ``text`` is a hard line break. ``options`` are :func:`_render_text`'s
    keyword arguments (canvas ranges, fonts, ``legible_at``/``legible_px``, contrast, alignment,
    wrapping, margin, noise, attempts).
    """
    return _render_text(text, rng, **options)[0]


_MATH_PARSER = None


def _math_parser():
    global _MATH_PARSER
    if _MATH_PARSER is None:
        from matplotlib.mathtext import MathTextParser

        _MATH_PARSER = MathTextParser("agg")
    return _MATH_PARSER


def _render_formula(
    latex: str,
    rng: random.Random,
    *,
    font_px_range: tuple[int, int] = (16, 40),
    fontsets: Sequence[str] = MATH_FONTSETS,
    padding_range: tuple[int, int] = (2, 24),
    min_contrast: float = 4.5,
    noise_prob: float = 0.3,
    noise_std: tuple[float, float] = (2.0, 6.0),
) -> tuple[Image.Image, dict[str, Any]]:
    from matplotlib.font_manager import FontProperties

    if not isinstance(latex, str) or not latex.strip():
        raise ValueError(f"formula must be a non-empty string, got {latex!r}")
    _check_range("font_px_range", font_px_range)
    _check_range("padding_range", padding_range, minimum=0)
    unknown = [f for f in fontsets if f not in MATH_FONTSETS]
    if unknown or not fontsets:
        raise ValueError(f"unknown mathtext fontsets {unknown!r}; choose from {MATH_FONTSETS}")
    source = latex if "$" in latex else f"${latex}$"
    font_px = rng.randint(*font_px_range)
    fontset = rng.choice(list(fontsets))
    # At 72 dpi one point is one pixel, so font_px is the em size in pixels.
    prop = FontProperties(family="DejaVu Sans", size=font_px, math_fontfamily=fontset)
    try:
        parsed = _math_parser().parse(source, dpi=72, prop=prop)
    except ValueError as err:
        raise ValueError(f"mathtext cannot parse formula {latex!r}: {err}") from None
    alpha = np.asarray(parsed.image, dtype=np.uint8)
    rows, cols = np.nonzero(alpha)
    if rows.size == 0:
        raise ValueError(f"formula {latex!r} renders no ink")
    alpha = alpha[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    pad = [rng.randint(*padding_range) for _ in range(4)]  # left, top, right, bottom
    height = alpha.shape[0] + pad[1] + pad[3]
    width = alpha.shape[1] + pad[0] + pad[2]
    fg, bg = pick_colours(rng, min_contrast)
    mask = np.zeros((height, width), dtype=np.float32)
    mask[pad[1]: pad[1] + alpha.shape[0], pad[0]: pad[0] + alpha.shape[1]] = alpha / 255.0
    pixels = np.asarray(bg, np.float32) + mask[..., None] * (np.asarray(fg, np.float32) - np.asarray(bg, np.float32))
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
    noise = 0.0
    if rng.random() < noise_prob:
        noise = rng.uniform(*noise_std)
        image = add_noise(image, rng, noise)
    meta = {
        "fontset": fontset,
        "font_px": font_px,
        "text_rgb": fg,
        "background_rgb": bg,
        "contrast": contrast_ratio(fg, bg),
        "ink_box": (pad[0], pad[1], pad[0] + alpha.shape[1], pad[1] + alpha.shape[0]),
        "noise_std": noise,
    }
    return image, meta


def render_formula(latex: str, rng: random.Random, **options: Any) -> Image.Image:
    """Render a mathtext formula (``r"$\\frac{3}{4} + x^2$"``; bare ``x^2`` gets ``$`` added) on a padded canvas.

    The canvas is sized to the formula's ink plus random padding, so nothing is clipped;
    a formula mathtext cannot parse raises ``ValueError`` naming it. ``options`` are
    :func:`_render_formula`'s keyword arguments (font size and fontset, padding, contrast, noise).
    """
    return _render_formula(latex, rng, **options)[0]


# ----------------------------------------------------------------------------- task samples


def random_text(
    rng: random.Random,
    *,
    length_range: tuple[int, int] = (1, 8),
    alphabet: str = string.ascii_letters + string.digits,
    words: Sequence[str] | None = None,
) -> str:
    """Transcription target of a chosen difficulty: random characters, or random words if given."""
    _check_range("length_range", length_range)
    n = rng.randint(*length_range)
    if words is not None:
        if not words:
            raise ValueError("words must not be empty when given")
        return " ".join(rng.choice(list(words)) for _ in range(n))
    if not alphabet:
        raise ValueError("alphabet must not be empty")
    return "".join(rng.choice(alphabet) for _ in range(n))


def transcription_sample(text: str, rng: random.Random, **render_options: Any) -> RenderedSample:
    """Image of ``text`` -> "Transcribe the text in the image." -> exactly ``text`` (wraps are layout, not content)."""
    image, meta = _render_text(text, rng, **render_options)
    return RenderedSample(image=image, text=text, question=TRANSCRIBE_QUESTION, answer=text,
                          meta={"task": "transcription", **meta})


def arithmetic_sample(
    rng: random.Random,
    *,
    operand_range: tuple[int, int] = (0, 99),
    operators: Sequence[str] = ("+", "-", "x"),
    times_symbol: str = "×",
    allow_negative: bool = False,
    **render_options: Any,
) -> RenderedSample:
    """Image of ``"23 + 45 = ?"`` (or -, x) -> the answer's digits; ``operand_range`` sets difficulty.

    Without ``allow_negative`` subtraction puts the larger operand first so answers stay >= 0.
    The problem goes on one line when a canvas allows, else it breaks before "=" (narrow
    ``legible_at`` canvases), so ``sample.text`` may hold a newline.
    ``times_symbol`` is what "x" is drawn as ("×" by default, "x" or "*" also common).
    """
    _check_range("operand_range", operand_range, minimum=-10**9)
    bad = [op for op in operators if op not in ("+", "-", "x")]
    if bad or not operators:
        raise ValueError(f"operators must be a non-empty subset of '+', '-', 'x', got {list(operators)!r}")
    a, b = rng.randint(*operand_range), rng.randint(*operand_range)
    op = rng.choice(list(operators))
    if op == "-" and not allow_negative and a < b:
        a, b = b, a
    result = {"+": a + b, "-": a - b, "x": a * b}[op]
    shown_op = times_symbol if op == "x" else op
    spaced = rng.random() < 0.6
    text = f"{a} {shown_op} {b} = ?" if spaced else f"{a}{shown_op}{b}=?"
    try:  # one line if some canvas allows it, else break before "=" (then wrap as usual)
        image, meta = _render_text(text, rng, **{**render_options, "wrap": False, "attempts": 8})
    except TextDoesNotFit:
        text = f"{a} {shown_op} {b}\n= ?" if spaced else f"{a}{shown_op}{b}\n=?"
        image, meta = _render_text(text, rng, **render_options)
    return RenderedSample(image=image, text=text, question=ARITHMETIC_QUESTION, answer=str(result),
                          meta={"task": "arithmetic", "a": a, "b": b, "op": op, "result": result, **meta})


def formula_sample(latex: str, rng: random.Random, **render_options: Any) -> RenderedSample:
    """Formula image -> "Write the formula in the image in LaTeX." -> the source without ``$`` delimiters."""
    image, meta = _render_formula(latex, rng, **render_options)
    answer = latex.strip()
    if answer.startswith("$") and answer.endswith("$") and len(answer) >= 2:
        answer = answer[1:-1].strip()
    return RenderedSample(image=image, text=latex, question=FORMULA_QUESTION, answer=answer,
                          meta={"task": "formula", **meta})
