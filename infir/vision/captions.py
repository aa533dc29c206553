"""Captioned real images, all offline: the reference pairs of the image-text filter (PAPER.md §5).

The paper calibrates its image-caption similarity on 2,500 COCO pairs; offline we have three
sources whose captions are true by construction:

- ``digits``: scikit-learn's bundled handwritten digits (1,797 8x8 scans), upscaled onto a tinted
  canvas; the caption names the digit (and, in some templates, the ink and background colours);
- ``photos``: the photographs and scans shipped inside the scikit-image wheel (those that load
  without pooch), each with a caption written for it here; pairs are tiles of a 3x3 grid, their
  mirror images and (training only) random crops inside training tiles, with captions that stay
  true of any part (``part of ...``, ``a mirrored image: ...``);
- ``shapes``: synthetic drawings of a coloured shape on a plain background; the captions say they
  are synthetic.

Splits are disjoint by underlying item (``CaptionedImage.key``): a digit scan, a photo TILE, a
shape's (colour, shape, background) combination. For photos the images are disjoint but the
subjects are not: each photograph gives one tile to validation and one to test and keeps the rest
for training, so a held-out photo pair is an unseen part of a picture the model has seen (23
photographs are too few to hold whole subjects out: the tiny model scored unseen subjects' true
captions as low as false ones). Splits are decided by hashing the item key (photo tiles: a draw
seeded by the photo's name), so they do not depend on ``seed`` or ``limit``; ``seed`` only varies
tints, crops and templates.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
SOURCES = ("digits", "photos", "shapes")
DIGIT_SIZE = 32       # canvas of an upscaled 8x8 digit
DIGIT_TRAIN_RENDERINGS = 2  # views of each training scan (held-out scans: one, centred)
SHAPE_SIZE = 64
PHOTO_MAX_SIDE = 128  # photos are stored small: the scorer looks at 32-64 px anyway
PHOTO_GRID = 3        # photos are cut into 3x3 tiles; a tile, not a photo, is the unit of a split
PHOTO_MIN_TILE_STD = 8.0  # grey-level std below which a tile is too plain to hold out (0-255 scale)
PHOTO_VARIANTS = 6    # extra random crops inside a photo's training tiles
SHAPE_INSTANCES = 2   # drawings per (colour, shape, background) combination


@dataclass
class CaptionedImage:
    """One image with a caption that is true of it; ``label`` names the underlying item (two pairs
    with the same label describe the same thing, so swapping their captions is no mismatch)."""

    id: str
    image: Image.Image
    caption: str
    source: str
    label: str = ""
    key: str = ""  # the item whose hash (or tile draw) decides the split: no two splits share a key


def split_of(key: str) -> str:
    """The split of an underlying item, by a stable hash of its key."""
    u = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") / 2**64
    edge = 0.0
    for name, fraction in zip(SPLITS, SPLIT_FRACTIONS):
        edge += fraction
        if u < edge:
            return name
    return SPLITS[-1]


def _item_rng(seed: int, key: str) -> random.Random:
    return random.Random(f"{seed}:{key}")


# --- colours ------------------------------------------------------------------------------------

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 160, 50), "blue": (30, 60, 220), "yellow": (240, 210, 20),
    "orange": (245, 130, 20), "purple": (130, 40, 170), "black": (15, 15, 15), "white": (250, 250, 250),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250), "black": (10, 10, 10), "grey": (128, 128, 128),
    "light blue": (170, 210, 240), "beige": (235, 220, 180),
}


def _luma(rgb: tuple[int, int, int]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _contrasting(fg: str, bg: str, min_contrast: float = 60.0) -> bool:
    a, b = COLOURS.get(fg) or BACKGROUNDS[fg], BACKGROUNDS[bg]
    return fg != bg and abs(_luma(a) - _luma(b)) >= min_contrast


# --- digits -------------------------------------------------------------------------------------

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_TEMPLATES = (
    "a handwritten digit {word}",
    "the number {n}, written by hand",
    "a low-resolution scan of a handwritten {n}",
    "a pixelated picture of the digit {word}",
    "a {fg} handwritten {word} on a {bg} background",
    "the digit {n} drawn in {fg} ink on {bg}",
)


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(int)


def _digit_pairs(split: str, seed: int) -> list[CaptionedImage]:
    """One centred rendering per held-out scan; DIGIT_TRAIN_RENDERINGS per training scan (the extra
    ones re-tinted, re-captioned, a little smaller and shifted: more views of the same 1,270 scans)."""
    images, targets = _digits()
    pairs = []
    for i, (pixels, n) in enumerate(zip(images, targets)):
        key = f"digits:{i}"
        if split_of(key) != split:
            continue
        for k in range(DIGIT_TRAIN_RENDERINGS if split == "train" else 1):
            rng = _item_rng(seed, key if k == 0 else f"{key}:{k}")
            bg = rng.choice(list(BACKGROUNDS))
            fg = rng.choice([c for c in COLOURS if _contrasting(c, bg)])
            side = DIGIT_SIZE if k == 0 else rng.randint(DIGIT_SIZE - 6, DIGIT_SIZE)
            alpha = Image.fromarray((pixels * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
            canvas = Image.new("RGB", (DIGIT_SIZE, DIGIT_SIZE), BACKGROUNDS[bg])
            ink = Image.new("RGB", (side, side), COLOURS[fg])
            offset = (rng.randint(0, DIGIT_SIZE - side), rng.randint(0, DIGIT_SIZE - side))
            canvas.paste(ink, offset, alpha)
            caption = rng.choice(_DIGIT_TEMPLATES).format(word=_DIGIT_WORDS[n], n=n, fg=fg, bg=bg)
            pairs.append(CaptionedImage(f"digit-{i:04d}" + (f"-v{k}" if k else ""), canvas, caption, "digits",
                                        f"digit:{n}", key))
    return pairs


# --- photos -------------------------------------------------------------------------------------

# name -> (caption of the whole image, caption true of any large crop of it). Written by looking at
# each picture; ``cat`` is left out (the same array as ``chelsea``), so are the 3-D and pooch-only ones.
PHOTO_CAPTIONS: dict[str, tuple[str, str]] = {
    "astronaut": ("a portrait of a smiling astronaut in an orange spacesuit, with an American flag and a "
                  "model space shuttle behind her", "part of a portrait of an astronaut in an orange spacesuit"),
    "brick": ("a grayscale photo of a brick wall, rows of bricks seen at an angle",
              "a grayscale close-up of brickwork"),
    "camera": ("a black and white photo of a cameraman looking through a camera on a tripod in a grassy field",
               "part of a black and white photo of a man with a camera on a tripod"),
    "cell": ("a grayscale microscope image of a single bright cell on a dark grey background",
             "part of a grayscale microscopy image of a cell"),
    "checkerboard": ("a black and white checkerboard pattern of squares",
                     "a black and white checkered pattern"),
    "chelsea": ("a close-up photo of a tabby cat's face with green eyes",
                "part of a close-up photo of a tabby cat"),
    "clock": ("a grayscale photo of a motion-blurred round wall clock on a plain wall",
              "part of a blurred grayscale photo of a clock"),
    "coffee": ("a cup of espresso on a red saucer with a spoon, on a wooden table",
               "part of a photo of a coffee cup on a red saucer"),
    "coins": ("a grayscale photo of rows of old coins on a dark background",
              "a grayscale photo of old coins"),
    "colorwheel": ("a colour wheel: a disc of rainbow hues fading to white at the centre, on black",
                   "part of a rainbow colour wheel"),
    "grass": ("a grayscale close-up texture of grass blades", "a grayscale texture of grass"),
    "gravel": ("a grayscale close-up texture of gravel stones", "a grayscale texture of small stones"),
    "horse": ("a black silhouette of a standing horse on a white background",
              "part of a black horse silhouette on white"),
    "hubble_deep_field": ("the Hubble deep field: many small colourful galaxies on a black sky",
                          "part of a deep space image full of small galaxies"),
    "immunohistochemistry": ("a microscope image of stained tissue, brown cells on a pale blue background",
                             "part of a stained tissue sample under a microscope"),
    "logo": ("the scikit-image logo: a green and orange circle with a snake drawn in it, on white",
             "part of a green and orange logo with a snake"),
    "microaneurysms": ("a grayscale close-up of retinal blood vessels", "grayscale retinal blood vessels"),
    "moon": ("a grayscale photo of the cratered surface of the moon", "a grayscale view of the lunar surface"),
    "page": ("a scanned page of printed text titled region-based segmentation",
             "part of a scanned page of printed text"),
    "retina": ("a colour photo of the back of an eye: an orange-red retina with blood vessels",
               "part of an orange-red retina with blood vessels"),
    "rocket": ("a rocket standing on its launch pad at night, lit by floodlights, between towers",
               "part of a night photo of a rocket on a launch pad"),
    "shepp_logan_phantom": ("the Shepp-Logan phantom: a grey oval head phantom with dark ellipses on black",
                            "part of a grey head phantom with ellipses"),
    "text": ("a grayscale photo of handwritten mathematical formulas on paper",
             "part of a photo of handwritten equations"),
}


@functools.cache
def _photo(name: str) -> Image.Image:
    """A bundled scikit-image picture as an RGB image at most PHOTO_MAX_SIDE px on its longer side."""
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.dtype == bool:
        array = np.where(array, 0, 255).astype(np.uint8)  # the horse mask: a black silhouette on white
    elif array.dtype != np.uint8:
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)
    image = Image.fromarray(array)
    if image.mode == "RGBA":  # the logo: composite onto white
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.split()[3])
        image = white
    image = image.convert("RGB")
    image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE), Image.LANCZOS)
    return image


def _photo_tiles(name: str) -> list[tuple[str, tuple[int, int, int, int], float]]:
    """The PHOTO_GRID x PHOTO_GRID tiles of a photo as (key, box, grey-level std), row by row."""
    image = _photo(name)
    w, h = image.size
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    tiles = []
    for r in range(PHOTO_GRID):
        for c in range(PHOTO_GRID):
            box = (c * w // PHOTO_GRID, r * h // PHOTO_GRID, (c + 1) * w // PHOTO_GRID, (r + 1) * h // PHOTO_GRID)
            tiles.append((f"photos:{name}:r{r}c{c}", box, float(grey[box[1]:box[3], box[0]:box[2]].std())))
    return tiles


@functools.cache
def photo_tile_splits(name: str) -> dict[str, str]:
    """Tile key -> split: one held-out tile per held-out split, drawn (by a hash of the name, not the
    seed) among the tiles with visible structure; every other tile is training. A plain tile (a blank
    wall, an empty sky) looks the same in several photos and would be no test of the caption."""
    tiles = _photo_tiles(name)
    textured = [key for key, _, std in tiles if std >= PHOTO_MIN_TILE_STD]
    rng = random.Random(f"photo-tiles:{name}")
    held = rng.sample(textured, 2) if len(textured) >= 3 else []
    splits = {key: "train" for key, _, _ in tiles}
    splits.update(zip(held, ("validation", "test")))
    return splits


def _photo_pairs(split: str, seed: int) -> list[CaptionedImage]:
    """Tiles of every photo: held-out splits get their tile and its mirror image; training gets its
    tiles, their mirrors and PHOTO_VARIANTS random crops inside training tiles (pixels never shared)."""
    pairs = []
    for name, (_, part) in PHOTO_CAPTIONS.items():
        image, splits = _photo(name), photo_tile_splits(name)
        mine = [(key, box) for key, box, _ in _photo_tiles(name) if splits[key] == split]
        label = f"photo:{name}"
        for key, box in mine:
            tile = image.crop(box)
            slug = key.split(":")[-1]
            pairs.append(CaptionedImage(f"photo-{name}-{slug}", tile, part, "photos", label, key))
            pairs.append(CaptionedImage(f"photo-{name}-{slug}-mirror", tile.transpose(Image.FLIP_LEFT_RIGHT),
                                        f"a mirrored image: {part}", "photos", label, key))
        if split != "train" or not mine:
            continue
        rng = _item_rng(seed, f"photos:{name}")
        for v in range(PHOTO_VARIANTS):
            key, (x0, y0, x1, y1) = rng.choice(mine)
            cw, ch = int((x1 - x0) * rng.uniform(0.6, 0.9)), int((y1 - y0) * rng.uniform(0.6, 0.9))
            x, y = rng.randint(x0, x1 - cw), rng.randint(y0, y1 - ch)
            pairs.append(CaptionedImage(f"photo-{name}-crop{v}", image.crop((x, y, x + cw, y + ch)), part,
                                        "photos", label, key))
    return pairs


# --- synthetic shapes ---------------------------------------------------------------------------

_SHAPE_TEMPLATES = (
    "a synthetic image of a {colour} {shape} on a {bg} background",
    "synthetic drawing: a {colour} {shape} against a plain {bg} background",
    "a computer-drawn {colour} {shape} on {bg} (synthetic)",
)


def _polygon(cx: float, cy: float, r: float, points: int, rotation: float, inner: float = 1.0) -> list[tuple]:
    out = []
    for k in range(points * (2 if inner < 1.0 else 1)):
        radius = r if inner == 1.0 or k % 2 == 0 else r * inner
        angle = rotation + np.pi * 2 * k / (points * (2 if inner < 1.0 else 1))
        out.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle)))
    return out


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill: tuple) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "ring":
        draw.ellipse(box, outline=fill, width=max(3, int(r / 3)))
    elif shape == "square":
        draw.rectangle((cx - 0.8 * r, cy - 0.8 * r, cx + 0.8 * r, cy + 0.8 * r), fill=fill)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy, r, 3, -np.pi / 2), fill=fill)
    elif shape == "diamond":
        draw.polygon(_polygon(cx, cy, r, 4, -np.pi / 2), fill=fill)
    elif shape == "hexagon":
        draw.polygon(_polygon(cx, cy, r, 6, 0.0), fill=fill)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy, r, 5, -np.pi / 2, inner=0.45), fill=fill)
    elif shape == "cross":
        t = 0.3 * r
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=fill)
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


SHAPES = ("circle", "ring", "square", "triangle", "diamond", "hexagon", "star", "cross")


def _shape_pairs(split: str, seed: int) -> list[CaptionedImage]:
    pairs = []
    for colour in COLOURS:
        for shape in SHAPES:
            for bg in BACKGROUNDS:
                if not _contrasting(colour, bg):
                    continue
                combo = f"{colour}|{shape}|{bg}"
                if split_of(f"shapes:{combo}") != split:
                    continue
                for k in range(SHAPE_INSTANCES):
                    rng = _item_rng(seed, f"shapes:{combo}:{k}")
                    image = Image.new("RGB", (SHAPE_SIZE, SHAPE_SIZE), BACKGROUNDS[bg])
                    r = rng.uniform(14, 24)
                    cx, cy = rng.uniform(r + 2, SHAPE_SIZE - r - 2), rng.uniform(r + 2, SHAPE_SIZE - r - 2)
                    _draw_shape(ImageDraw.Draw(image), shape, cx, cy, r, COLOURS[colour])
                    caption = rng.choice(_SHAPE_TEMPLATES).format(colour=colour, shape=shape, bg=bg)
                    slug = combo.replace("|", "-").replace(" ", "_")
                    pairs.append(CaptionedImage(f"shape-{slug}-{k}", image, caption, "shapes", f"shape:{combo}",
                                                f"shapes:{combo}"))
    return pairs


_BUILDERS: dict[str, Callable[[str, int], list[CaptionedImage]]] = {
    "digits": _digit_pairs, "photos": _photo_pairs, "shapes": _shape_pairs}


def caption_pairs(split: str, seed: int = 0, limit: int | None = None,
                  sources: tuple[str, ...] = SOURCES) -> list[CaptionedImage]:
    """The matched image-caption pairs of ``split``, in a ``seed``-shuffled order (``limit``: the first n)."""
    if split not in SPLITS:
        raise ValueError(f"caption_pairs: split must be one of {SPLITS}, got {split!r}")
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"caption_pairs: unknown sources {unknown} (known: {SOURCES})")
    pairs = [p for source in sources for p in _BUILDERS[source](split, seed)]
    random.Random(f"order:{seed}:{split}").shuffle(pairs)
    return pairs if limit is None else pairs[:limit]
