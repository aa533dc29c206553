"""Seeded synthetic screenshots for InfiR-VL's GUI grounding: widgets with exact boxes and click answers.

A screen is a desktop with one window (title bar, optional menu bar) holding buttons, text
fields with placeholder text, checkboxes and shape icons, in a random light/dark theme with
an accent colour. Each :class:`Element`'s box is *measured* from the pixels its drawing
changed, so the box is exactly what is drawn; elements are placed so their boxes never
overlap and labels are unique on a screen, which makes every click instruction unambiguous.
:func:`click_sample` turns one element into an instruction and the paper's answer format, the
element centre normalised to [0, 1000] (:mod:`infir.vision.coords`).

Difficulty knobs: ``n_elements``, ``vocabulary`` (few labels), ``kinds``, ``scale`` (bigger
widgets and text) and ``legible_at`` (text stays >= ``legible_px`` cap height after resizing the
screen to that square side). Easy enough for a tiny model at 64-128 px input, e.g.
``synth_screen(rng, size=(320, 240), n_elements=(2, 3), vocabulary=("OK", "Cancel", "Save", "Open"),
kinds=("button",), menu_bar=False, legible_at=128)``.
"""

from __future__ import annotations

import colorsys
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFont

from infir.vision.coords import format_point, to_normalised
from infir.vision.fonts import cap_height, load_font, missing_glyphs
from infir.vision.render import contrast_ratio

RGB = tuple[int, int, int]
Box = tuple[int, int, int, int]

SCREEN_SIZES: tuple[tuple[int, int], ...] = (
    (320, 240), (480, 320), (640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 800),
)
KINDS = ("button", "text_field", "checkbox", "icon")
MENU = "menu"  # kind of menu-bar items; they come with ``menu_bar`` rather than ``kinds``

BUTTON_LABELS = (
    "OK", "Cancel", "Save", "Open", "Close", "Apply", "Delete", "Next", "Back", "Send", "Submit",
    "Print", "Share", "Copy", "Paste", "Undo", "Redo", "Log in", "Sign up", "Download", "Upload",
    "Refresh", "Export", "Import", "Continue", "Add", "Remove", "Play", "Stop", "Reset",
)
FIELD_PLACEHOLDERS = (
    "Search", "Email", "Password", "Username", "Full name", "Address", "Phone number", "City",
    "Message", "Subject", "Date", "Amount", "Website", "Comment", "Zip code",
)
CHECKBOX_LABELS = (
    "Remember me", "Dark mode", "Notifications", "Auto save", "Show hidden files", "Wi-Fi",
    "Bluetooth", "Subscribe", "I agree", "Sync files", "Sound", "Location", "Keep signed in",
)
ICON_SHAPES = ("circle", "square", "triangle", "star", "diamond", "plus", "cross", "hexagon")
MENU_LABELS = ("File", "Edit", "View", "Insert", "Format", "Tools", "Window", "Help", "History", "Go")
WINDOW_TITLES = (
    "Untitled", "Preferences", "Mail", "Notes", "Calendar", "Photos", "Terminal", "Music",
    "Account", "Files", "Editor", "Browser", "Contacts", "Weather", "Maps",
)
UI_FONTS = ("sans", "sans", "sans", "sans-bold", "serif", "mono")

CLICK_TEMPLATES: dict[str, tuple[str, ...]] = {
    "button": ('Click "{label}".', 'Click the "{label}" button.', 'Press "{label}".', 'Tap the {label} button.',
               'Where is the "{label}" button?'),
    "text_field": ('Click the "{label}" field.', 'Click the text box that says "{label}".',
                   'Select the {label} input.', 'Where do I type the {label}?'),
    "checkbox": ('Click the "{label}" checkbox.', 'Tick "{label}".', 'Toggle {label}.',
                 'Where is the "{label}" option?'),
    "icon": ("Click the {label} icon.", "Tap the {label} icon.", "Where is the {label} icon?",
             "Click the {label}-shaped icon."),
    MENU: ('Open the "{label}" menu.', 'Click "{label}" in the menu bar.', "Click the {label} menu."),
}
PLACE_TRIES = 80  # random positions tried per element before it is left out
LAYOUT_TRIES = 6  # full re-layouts before giving up on the minimum element count


class ScreenLayoutError(ValueError):
    """Not even the minimum number of elements fits the screen; the message names the settings."""


@dataclass(frozen=True)
class Element:
    """One clickable widget. ``box`` is (x0, y0, x1, y1), inclusive pixel indices of its drawn pixels."""

    label: str
    kind: str
    box: Box

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre in pixel-index coordinates (may be a half pixel), the click target."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    def contains(self, x: float, y: float) -> bool:
        """Whether a pixel-index point falls on the element's box."""
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1


@dataclass(frozen=True)
class Screen:
    """A rendered screenshot and its elements (no two share a label or a pixel)."""

    image: Image.Image
    width: int
    height: int
    elements: list[Element]
    meta: dict[str, Any] = field(default_factory=dict)

    def element(self, label: str) -> Element:
        """The element with this label; KeyError listing the labels if absent."""
        for element in self.elements:
            if element.label == label:
                return element
        raise KeyError(f"no element labelled {label!r}; labels: {[e.label for e in self.elements]}")


@dataclass(frozen=True)
class Theme:
    """Colours of one look (light or dark, with an accent)."""

    name: str
    desktop: RGB
    window: RGB
    title_bar: RGB
    title_text: RGB
    menu_bar: RGB
    text: RGB
    border: RGB
    field: RGB
    placeholder: RGB
    button: RGB
    button_text: RGB
    accent: RGB
    accent_text: RGB


# ----------------------------------------------------------------------------- theme


def _grey(level: int) -> RGB:
    return (level, level, level)


def _tint(rgb: RGB, rng: random.Random, amount: int) -> RGB:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)
    return (r, g, b)


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _readable_on(background: RGB, preferred: RGB, minimum: float = 4.5) -> RGB:
    """``preferred`` if it reads on ``background``, else whichever of black/white reads best."""
    if contrast_ratio(preferred, background) >= minimum:
        return preferred
    return max(((0, 0, 0), (255, 255, 255)), key=lambda c: contrast_ratio(c, background))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b))
    return (r, g, bl)


def make_theme(rng: random.Random, dark: bool | None = None) -> Theme:
    """A random light or dark theme whose text/fill pairs all pass readable contrast."""
    if dark is None:
        dark = rng.random() < 0.5
    accent = _hsv(rng.random(), rng.uniform(0.5, 0.9), rng.uniform(0.55, 0.9))
    desktop = _hsv(rng.random(), rng.uniform(0.15, 0.6), rng.uniform(0.25, 0.8))
    if dark:
        window = _tint(_grey(rng.randint(28, 48)), rng, 6)
        title_bar = accent if rng.random() < 0.3 else _tint(_grey(rng.randint(15, 25)), rng, 4)
        menu_bar = _tint(_grey(rng.randint(52, 64)), rng, 4)
        text = _grey(rng.randint(220, 245))
        border = _grey(rng.randint(100, 130))
        field_ = _grey(rng.randint(12, 20)) if rng.random() < 0.5 else _grey(rng.randint(62, 72))
        button = _grey(rng.randint(70, 90))
    else:
        window = _tint(_grey(rng.randint(232, 250)), rng, 5)
        title_bar = accent if rng.random() < 0.3 else _tint(_grey(rng.randint(205, 222)), rng, 4)
        menu_bar = _tint(_grey(rng.randint(218, 228)), rng, 3)
        text = _grey(rng.randint(15, 45))
        border = _grey(rng.randint(140, 175))
        field_ = (255, 255, 255)
        button = _grey(rng.randint(200, 215))
    placeholder = _mix(text, field_, 0.35)
    if contrast_ratio(placeholder, field_) < 3.0:
        placeholder = _readable_on(field_, text)
    return Theme(
        name="dark" if dark else "light", desktop=desktop, window=window, title_bar=title_bar,
        title_text=_readable_on(title_bar, text), menu_bar=menu_bar, text=_readable_on(window, text),
        border=border, field=field_, placeholder=placeholder, button=button,
        button_text=_readable_on(button, text), accent=accent, accent_text=_readable_on(accent, (255, 255, 255)),
    )


# ----------------------------------------------------------------------------- drawing


def _ink(font: ImageFont.FreeTypeFont, text: str) -> Box:
    """Ink box of ``text`` relative to its left baseline point (anchor "ls")."""
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    return left, top, right, bottom


def _draw_centred_text(draw: ImageDraw.ImageDraw, rect: Box, text: str, font: ImageFont.FreeTypeFont,
                       fill: RGB, align: str = "center", pad: int = 0) -> None:
    x0, y0, x1, y1 = rect
    left, top, right, bottom = _ink(font, text)
    if align == "center":
        ox = (x0 + x1 - (right - left)) // 2 - left
    else:
        ox = x0 + pad - left
    oy = (y0 + y1 - (bottom - top)) // 2 - top
    draw.text((ox, oy), text, font=font, fill=fill, anchor="ls")


def _shape_points(shape: str, box: Box) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    if shape == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if shape == "diamond":
        return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    if shape == "hexagon":
        return [(cx + r * math.cos(math.pi / 3 * k), cy + r * math.sin(math.pi / 3 * k)) for k in range(6)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi / 5 * k),
                 cy - (r if k % 2 == 0 else r * 0.45) * math.cos(math.pi / 5 * k)) for k in range(10)]
    raise ValueError(f"no polygon for shape {shape!r}")


def _draw_icon(draw: ImageDraw.ImageDraw, rect: Box, shape: str, colour: RGB, tile: RGB | None) -> None:
    x0, y0, x1, y1 = rect
    if tile is not None:
        draw.rounded_rectangle(rect, radius=max(1, (x1 - x0) // 5), fill=tile)
        inset = max(2, (x1 - x0) // 6)
        x0, y0, x1, y1 = x0 + inset, y0 + inset, x1 - inset, y1 - inset
    inner = (x0, y0, x1, y1)
    bar = max(2, (x1 - x0) // 4)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    if shape == "circle":
        draw.ellipse(inner, fill=colour)
    elif shape == "square":
        draw.rectangle(inner, fill=colour)
    elif shape == "plus":
        draw.rectangle((cx - bar // 2, y0, cx - bar // 2 + bar, y1), fill=colour)
        draw.rectangle((x0, cy - bar // 2, x1, cy - bar // 2 + bar), fill=colour)
    elif shape == "cross":
        draw.line((x0, y0, x1, y1), fill=colour, width=bar)
        draw.line((x0, y1, x1, y0), fill=colour, width=bar)
    else:
        draw.polygon(_shape_points(shape, inner), fill=colour)


@dataclass
class _Plan:
    """An element before placement: its kind, label and the size of the rectangle it draws in."""

    kind: str
    label: str
    size: tuple[int, int]
    extra: dict[str, Any]


def _measure_drawn(image: Image.Image, before: Image.Image, slot: Box) -> Box:
    """Inclusive box of the pixels that changed inside ``slot`` (exclusive right/bottom)."""
    after = image.crop(slot)
    bbox = ImageChops.difference(after, before).getbbox()
    if bbox is None:
        raise RuntimeError(f"element drawn in {slot} changed no pixels (theme colours collide)")
    return slot[0] + bbox[0], slot[1] + bbox[1], slot[0] + bbox[2] - 1, slot[1] + bbox[3] - 1


def _intersects(a: Box, b: Box) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def _vocabulary_for(kind: str, vocabulary: Sequence[str] | Mapping[str, Sequence[str]] | None) -> Sequence[str]:
    if kind == "icon":
        base: Sequence[str] = ICON_SHAPES
    else:
        base = {"button": BUTTON_LABELS, "text_field": FIELD_PLACEHOLDERS, "checkbox": CHECKBOX_LABELS,
                MENU: MENU_LABELS}[kind]
    if vocabulary is None:
        return base
    if isinstance(vocabulary, Mapping):
        words = vocabulary.get(kind, base)
    else:
        words = base if kind in ("icon", MENU) else vocabulary
    if kind == "icon":
        unknown = [w for w in words if w not in ICON_SHAPES]
        if unknown:
            raise ValueError(f"icon vocabulary {unknown!r} has no drawable shape; choose from {ICON_SHAPES}")
    return words


# ----------------------------------------------------------------------------- screen


def synth_screen(
    rng: random.Random,
    *,
    size: tuple[int, int] | None = None,
    sizes: Sequence[tuple[int, int]] = SCREEN_SIZES,
    n_elements: tuple[int, int] = (3, 8),
    vocabulary: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    kinds: Sequence[str] = KINDS,
    menu_bar: bool | None = None,
    theme: Theme | None = None,
    dark: bool | None = None,
    scale: float = 1.0,
    legible_at: int | None = None,
    legible_px: int = 10,
) -> Screen:
    """Draw one random screen and return it with its elements' measured boxes.

    ``size`` fixes (width, height), else one of ``sizes``. ``n_elements`` bounds the widgets in the
    window body (menu-bar items come on top when ``menu_bar`` is on; None: 40% of screens).
    ``vocabulary`` replaces the text labels (one list for buttons, fields and checkboxes, or a
    mapping kind -> labels; icons are named by shape). ``scale`` multiplies the ~11-16 px UI font;
    ``legible_at`` raises it so the capital height is >= ``legible_px`` after resizing to that
    square side. Raises :class:`ScreenLayoutError` if fewer than ``n_elements[0]`` fit.
    """
    if len(n_elements) != 2 or not 1 <= n_elements[0] <= n_elements[1]:
        raise ValueError(f"n_elements must be (low, high) with 1 <= low <= high, got {n_elements!r}")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown element kinds {unknown!r}; choose from {KINDS}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if size is None:
        if not sizes:
            raise ValueError("sizes must list at least one (width, height)")
        size = rng.choice(list(sizes))
    width, height = size
    if width < 32 or height < 32:
        raise ValueError(f"screen size {size} too small (need >= 32x32)")
    theme = theme or make_theme(rng, dark)
    font_key = rng.choice(UI_FONTS)
    font_px = chrome_px = max(8, round(rng.uniform(11, 16) * scale))
    if legible_at is not None:
        factor = max(width, height) / legible_at  # the more-shrunk axis decides
        while cap_height(font_key, font_px) < legible_px * factor:
            font_px += 1
    font = load_font(font_key, font_px)
    # Window chrome (title) keeps the plain UI size: it is not a click target, and a title bar
    # grown for legibility would eat the small screens the easy setting uses.
    chrome_key = "sans-bold" if font_key.startswith("sans") and rng.random() < 0.5 else font_key
    chrome = load_font(chrome_key, chrome_px)
    for words_kind in (*kinds, MENU):
        for word in _vocabulary_for(words_kind, vocabulary):
            if words_kind != "icon" and missing_glyphs(word, font_key):
                raise ValueError(f"label {word!r} has characters font {font_key!r} cannot draw")

    for attempt in range(LAYOUT_TRIES):
        screen = _try_layout(rng, width, height, theme, font_key, font, chrome, font_px, n_elements,
                             vocabulary, kinds, menu_bar, force_flow=attempt >= LAYOUT_TRIES // 2)
        if screen is not None:
            screen.meta["layout_attempts"] = attempt + 1
            return screen
    raise ScreenLayoutError(
        f"fewer than {n_elements[0]} elements fit a {width}x{height} screen at font {font_px} px "
        f"(scale={scale}, legible_at={legible_at}); lower n_elements, scale or legible_at, or use a larger size"
    )


def _plan_element(kind: str, label: str, font: ImageFont.FreeTypeFont, font_key: str, font_px: int,
                  rng: random.Random) -> _Plan:
    """Size an element before placing it: text ink plus padding, so its drawing fits the slot."""
    ascent, descent = font.getmetrics()
    line_h = ascent + descent
    if kind == "icon":
        side = round(font_px * rng.uniform(1.6, 2.4))
        return _Plan(kind, label, (side, side), {"tile": rng.random() < 0.5})
    left, _, right, _ = _ink(font, label)
    text_w = right - left
    if kind == "button":
        pad_x, pad_y = round(font_px * rng.uniform(0.5, 1.0)), round(font_px * rng.uniform(0.25, 0.5))
        return _Plan(kind, label, (text_w + 2 * pad_x, line_h + 2 * pad_y),
                     {"primary": rng.random() < 0.3, "radius": rng.randint(0, max(1, font_px // 2))})
    if kind == "text_field":
        pad = round(font_px * 0.5)
        w = max(text_w + 2 * pad, round(font_px * rng.uniform(7, 14)))
        return _Plan(kind, label, (w, line_h + 2 * round(font_px * 0.35)), {"pad": pad})
    if kind == "checkbox":
        side = max(6, round(cap_height(font_key, font_px) * 1.3))
        gap = max(3, font_px // 2)
        return _Plan(kind, label, (side + gap + text_w, max(side, line_h)),
                     {"side": side, "gap": gap, "checked": rng.random() < 0.5})
    raise ValueError(f"unknown element kind {kind!r}")


def _draw_element(draw: ImageDraw.ImageDraw, plan: _Plan, rect: Box, theme: Theme,
                  font: ImageFont.FreeTypeFont, surface: RGB) -> None:
    x0, y0, x1, y1 = rect
    if plan.kind == "button":
        fill = theme.accent if plan.extra["primary"] else theme.button
        text_colour = theme.accent_text if plan.extra["primary"] else theme.button_text
        outline = theme.border if contrast_ratio(fill, surface) < 1.4 else None
        draw.rounded_rectangle(rect, radius=plan.extra["radius"], fill=fill, outline=outline)
        _draw_centred_text(draw, rect, plan.label, font, text_colour)
    elif plan.kind == "text_field":
        draw.rectangle(rect, fill=theme.field, outline=theme.border)
        _draw_centred_text(draw, rect, plan.label, font, theme.placeholder, align="left", pad=plan.extra["pad"])
    elif plan.kind == "checkbox":
        side = plan.extra["side"]
        by0 = (y0 + y1 - side) // 2
        square = (x0, by0, x0 + side - 1, by0 + side - 1)
        checked = plan.extra["checked"]
        draw.rectangle(square, fill=theme.accent if checked else theme.field, outline=theme.border)
        if checked:
            w = max(1, side // 6)
            draw.line((x0 + side * 0.2, by0 + side * 0.5, x0 + side * 0.42, by0 + side * 0.75,
                       x0 + side * 0.8, by0 + side * 0.25), fill=theme.accent_text, width=w)
        text_x0 = x0 + side + plan.extra["gap"]
        _draw_centred_text(draw, (text_x0, y0, x1, y1), plan.label, font, theme.text, align="left")
    elif plan.kind == "icon":
        tile = None
        colour = theme.accent
        if plan.extra["tile"]:
            tile = theme.button
            if contrast_ratio(colour, tile) < 1.5:
                colour = theme.text
        elif contrast_ratio(colour, surface) < 1.5:
            colour = theme.text
        _draw_icon(draw, rect, plan.label, colour, tile)
    else:
        raise ValueError(f"unknown element kind {plan.kind!r}")


def _free_spot(rng: random.Random, body: Box, size: tuple[int, int], occupied: list[Box],
               gap: int) -> tuple[int, int] | None:
    """Top-left corner for a ``size`` rectangle in ``body`` keeping ``gap`` px from ``occupied``.

    Random tries first (spread-out layouts); if they all collide, a grid scan finds any free
    spot left, so crowded easy screens (few big widgets on a small screen) still fill up.
    """
    w, h = size
    xs = (body[0] + 1, body[2] - 1 - w)
    ys = (body[1] + 1, body[3] - 1 - h)

    def free(x0: int, y0: int) -> bool:
        halo = (x0 - 1 - gap, y0 - 1 - gap, x0 + w + 1 + gap, y0 + h + 1 + gap)
        return not any(_intersects(halo, other) for other in occupied)

    for _ in range(PLACE_TRIES):
        x0, y0 = rng.randint(*xs), rng.randint(*ys)
        if free(x0, y0):
            return x0, y0
    step = max(2, gap)
    spots = [(x0, y0) for x0 in (*range(xs[0], xs[1], step), xs[1]) for y0 in (*range(ys[0], ys[1], step), ys[1])
             if free(x0, y0)]
    return rng.choice(spots) if spots else None


def _scatter_spots(rng: random.Random, body: Box, plans: list[_Plan], gap: int) -> list[tuple[_Plan, tuple[int, int]]]:
    """Widgets at random free spots (dialog-like scatter); plans that find no room are dropped."""
    occupied: list[Box] = []
    spots: list[tuple[_Plan, tuple[int, int]]] = []
    for plan in plans:
        spot = _free_spot(rng, body, plan.size, occupied, gap)
        if spot is None:
            continue
        x0, y0 = spot
        occupied.append((x0 - 1, y0 - 1, x0 + plan.size[0] + 1, y0 + plan.size[1] + 1))
        spots.append((plan, spot))
    return spots


def _flow_spots(rng: random.Random, body: Box, plans: list[_Plan], gap: int) -> list[tuple[_Plan, tuple[int, int]]]:
    """Widgets in rows (form/toolbar-like), each row aligned at random, the block at a random height.

    Packs far tighter than scatter, so it is the fallback when few big widgets must share a small screen.
    """
    if not plans:
        return []
    avail_w, avail_h = body[2] - body[0] - 2, body[3] - body[1] - 2
    hgap, vgap = rng.randint(gap, 3 * gap), rng.randint(gap, 3 * gap)
    rows: list[list[_Plan]] = [[]]
    row_w = 0
    for plan in plans:
        need = plan.size[0] + 2 + (hgap if rows[-1] else 0)
        if rows[-1] and row_w + need > avail_w:
            rows.append([])
            row_w, need = 0, plan.size[0] + 2
        rows[-1].append(plan)
        row_w += need
    heights = [max(p.size[1] for p in row) + 2 for row in rows]
    if sum(heights) + vgap * (len(rows) - 1) > avail_h:
        vgap = gap  # tighten before dropping rows
    kept: list[list[_Plan]] = []
    total_h = 0
    for row in rows:
        row_h = max(p.size[1] for p in row) + 2
        extra = row_h + (vgap if kept else 0)
        if total_h + extra > avail_h:
            break
        kept.append(row)
        total_h += extra
    spots: list[tuple[_Plan, tuple[int, int]]] = []
    y = body[1] + 1 + rng.randint(0, avail_h - total_h)
    for row in kept:
        row_h = max(p.size[1] for p in row) + 2
        width = sum(p.size[0] + 2 for p in row) + hgap * (len(row) - 1)
        slack = avail_w - width
        x = body[0] + 1 + {"left": 0, "center": slack // 2, "right": slack}[rng.choice(("left", "center", "right"))]
        for plan in row:
            spots.append((plan, (x + 1, y + 1 + (row_h - 2 - plan.size[1]) // 2)))
            x += plan.size[0] + 2 + hgap
        y += row_h + vgap
    return spots


def _try_layout(rng: random.Random, width: int, height: int, theme: Theme, font_key: str,
                font: ImageFont.FreeTypeFont, chrome: ImageFont.FreeTypeFont, font_px: int,
                n_elements: tuple[int, int], vocabulary: Sequence[str] | Mapping[str, Sequence[str]] | None,
                kinds: Sequence[str], menu_bar: bool | None, force_flow: bool) -> Screen | None:
    """One layout try: chrome, then menu items, then widgets at random free spots; None if too few fit."""
    image = Image.new("RGB", (width, height), theme.desktop)
    draw = ImageDraw.Draw(image)
    # Window: maximised or floating on the desktop.
    if rng.random() < 0.35:
        win = (0, 0, width - 1, height - 1)
    else:
        mx, my = rng.randint(0, width // 12), rng.randint(0, height // 12)
        win = (mx, my, width - 1 - rng.randint(0, width // 12), height - 1 - rng.randint(0, height // 12))
    draw.rectangle(win, fill=theme.window, outline=theme.border)
    c_ascent, c_descent = chrome.getmetrics()
    title_h = round((c_ascent + c_descent) * rng.uniform(1.5, 1.9))
    title_rect = (win[0], win[1], win[2], win[1] + title_h)
    draw.rectangle(title_rect, fill=theme.title_bar)
    used: set[str] = set()
    title = rng.choice(WINDOW_TITLES)
    # Window controls: three dots left (mac-like) or three glyph boxes right (windows-like).
    r = max(3, title_h // 6)
    cy = win[1] + title_h // 2
    controls_left = rng.random() < 0.5
    for k in range(3):
        if controls_left:
            cx = win[0] + r * 2 + k * r * 3
            colour = ((236, 95, 87), (245, 190, 80), (98, 196, 84))[k]
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        else:
            cx = win[2] - r * 2 - k * r * 4
            draw.rectangle((cx - r, cy - r, cx + r, cy + r), outline=theme.title_text)
    title_font = chrome
    left, top, right, bottom = _ink(title_font, title)
    if right - left < (win[2] - win[0]) - 12 * r * 2:
        _draw_centred_text(draw, title_rect, title, title_font, theme.title_text)
        used.add(title)  # never reuse the title as a label: "Click Mail" must have one answer
    y_body = title_rect[3] + 1
    elements: list[Element] = []
    gap = max(3, font_px // 3)
    ascent, descent = font.getmetrics()

    want_menu = menu_bar if menu_bar is not None else rng.random() < 0.4
    if want_menu:
        menu_h = round((ascent + descent) * 1.5)
        menu_rect = (win[0] + 1, y_body, win[2] - 1, y_body + menu_h)
        draw.rectangle(menu_rect, fill=theme.menu_bar)
        x = win[0] + 1 + font_px // 2
        words = [w for w in _vocabulary_for(MENU, vocabulary) if w not in used]
        rng.shuffle(words)
        for word in words[: rng.randint(3, 6)]:
            left, top, right, bottom = _ink(font, word)
            if x + (right - left) + font_px // 2 > win[2] - 1:
                break
            slot = (x - 1, menu_rect[1] + 1, x + (right - left) + 2, menu_rect[3])
            before = image.crop(slot)
            _draw_centred_text(draw, (x, menu_rect[1], x + (right - left), menu_rect[3]), word, font, theme.text,
                               align="left")
            box = _measure_drawn(image, before, slot)
            elements.append(Element(word, MENU, box))
            used.add(word)
            x += (right - left) + font_px
        y_body = menu_rect[3] + 1

    body = (win[0] + 1 + gap, y_body + gap, win[2] - gap, win[3] - gap)  # exclusive right/bottom
    target = rng.randint(*n_elements)
    plans: list[_Plan] = []
    for _ in range(target * 3):
        if len(plans) == target:
            break
        kind = rng.choice(list(kinds))
        words = [w for w in _vocabulary_for(kind, vocabulary) if w not in used]
        if not words:
            continue
        label = rng.choice(words)
        plan = _plan_element(kind, label, font, font_key, font_px, rng)
        if plan.size[0] > body[2] - body[0] - 2 or plan.size[1] > body[3] - body[1] - 2:
            continue
        plans.append(plan)
        used.add(label)
    flow = force_flow or rng.random() < 0.5
    spots = _flow_spots(rng, body, plans, gap) if flow else _scatter_spots(rng, body, plans, gap)
    for plan, (x0, y0) in spots:
        w, h = plan.size
        slot = (x0 - 1, y0 - 1, x0 + w + 1, y0 + h + 1)
        before = image.crop(slot)
        _draw_element(draw, plan, (x0, y0, x0 + w - 1, y0 + h - 1), theme, font, theme.window)
        elements.append(Element(plan.label, plan.kind, _measure_drawn(image, before, slot)))
    placed = len(spots)
    if placed < n_elements[0]:
        return None
    meta = {"theme": theme.name, "font": font_key, "font_px": font_px, "title": title, "window": win,
            "menu_bar": want_menu, "layout": "flow" if flow else "scatter"}
    return Screen(image=image, width=width, height=height, elements=elements, meta=meta)


def click_sample(screen: Screen, element: Element, rng: random.Random | None = None) -> tuple[str, str]:
    """(instruction, answer) for clicking ``element``: e.g. ('Click "Save".', "(512, 300)").

    The answer is the element centre normalised to [0, 1000]; ``rng`` picks the wording
    (None: the first template, for reproducible evaluation prompts).
    """
    if element not in screen.elements:
        raise ValueError(f"element {element.label!r} ({element.kind}) is not on this screen")
    templates = CLICK_TEMPLATES[element.kind]
    template = templates[0] if rng is None else rng.choice(templates)
    nx, ny = to_normalised(*element.centre, screen.width, screen.height)
    return template.format(label=element.label), format_point(nx, ny)
