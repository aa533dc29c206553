"""Behaviour of the InfiR-VL image generators: coordinates, rendered text/formulas, GUI screens."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from PIL import Image

from infir.vision.coords import format_point, parse_point, to_normalised, to_pixels
from infir.vision.gui import KINDS, ScreenLayoutError, click_sample, synth_screen
from infir.vision.render import (
    ARITHMETIC_QUESTION,
    TRANSCRIBE_QUESTION,
    TextDoesNotFit,
    arithmetic_sample,
    contrast_ratio,
    formula_sample,
    random_text,
    render_formula,
    render_text,
    transcription_sample,
)

SIZES = [(320, 240), (1000, 1000), (1001, 777), (1920, 1080), (7, 5)]


# ----------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize("width,height", SIZES)
def test_pixel_round_trip(width: int, height: int) -> None:
    for side, axis in ((width, 0), (height, 1)):
        errors = []
        for p in range(side):
            point = (p, 0) if axis == 0 else (0, p)
            size = (side, 1) if axis == 0 else (1, side)
            n = to_normalised(*point, *size)
            back = to_pixels(*n, *size)
            errors.append(abs(back[axis] - p))
        if side <= 1001:
            assert max(errors) == 0, f"pixel round trip not exact on a {side} px side"
        else:
            bound = math.floor((side - 1) / 2000 + 0.5)
            assert 0 < max(errors) <= bound <= math.ceil(side / 1000) / 2


@pytest.mark.parametrize("width,height", SIZES)
def test_normalised_round_trip(width: int, height: int) -> None:
    for side in (width, height):
        errors = []
        for n in range(1001):
            p, _ = to_pixels(n, 0, side, 1)
            again, _ = to_normalised(p, 0, side, 1)
            errors.append(abs(again - n))
            assert to_pixels(again, 0, side, 1)[0] == p  # a second trip changes nothing
        if side >= 1001:
            assert max(errors) == 0, f"normalised round trip not exact on a {side} px side"
        else:
            assert max(errors) <= 500 / (side - 1) + 0.5


@pytest.mark.parametrize("width,height", SIZES)
def test_coordinate_edges(width: int, height: int) -> None:
    assert to_normalised(0, 0, width, height) == (0, 0)
    assert to_normalised(width - 1, height - 1, width, height) == (1000, 1000)
    assert to_pixels(0, 0, width, height) == (0, 0)
    assert to_pixels(1000, 1000, width, height) == (width - 1, height - 1)
    with pytest.raises(ValueError, match="x="):
        to_normalised(width, 0, width, height)
    with pytest.raises(ValueError, match="y="):
        to_normalised(0, -1, width, height)
    with pytest.raises(ValueError, match="1001"):
        to_pixels(1001, 0, width, height)


def test_one_pixel_side_and_half_pixel_centres() -> None:
    assert to_normalised(0, 0, 1, 1) == (500, 500)
    assert to_pixels(1000, 0, 1, 1) == (0, 0)
    assert to_normalised(0.5, 0, 3, 3) == (250, 0)  # a box centre between two pixels


@pytest.mark.parametrize(
    "text,expected",
    [
        ("(512, 300)", (512, 300)),
        ("Click at [12,7] now", (12, 7)),
        ("the answer is 0,1000.", (0, 1000)),
        ("first (1, 2) then (3, 4)", (1, 2)),
        ("( 5 ,  6 )", (5, 6)),
        ("(1001, 3)", None),
        ("(-5, 3)", None),
        ("(0.5, 0.3)", None),
        ("no point here", None),
        ("(512)", None),
    ],
)
def test_parse_point(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_point(text) == expected


def test_format_parse_round_trip_and_range_check() -> None:
    for point in [(0, 0), (1000, 1000), (512, 3)]:
        assert parse_point(format_point(*point)) == point
    assert format_point(512, 300) == "(512, 300)"
    with pytest.raises(ValueError, match="nx"):
        format_point(1001, 0)


# ----------------------------------------------------------------------------- text rendering


def _ink_mask(image: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.int16)
    return np.abs(pixels - np.asarray(background, dtype=np.int16)).sum(axis=-1) > 0


def _background(image: Image.Image) -> tuple[int, int, int]:
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None
    return max(colours)[1]


TEXTS = [
    "Hello",
    "The quick brown fox jumps over the lazy dog",
    "Supercalifragilisticexpialidocious",
    "line one\nline two",
    "gjpqy|_ ÁÉ ß 3.14",
]


@pytest.mark.parametrize("seed", range(8))
def test_rendered_text_is_not_clipped_and_has_contrast(seed: int) -> None:
    rng = random.Random(seed)
    for text in TEXTS:
        image = render_text(text, rng, noise_prob=0.0, margin_px=2)
        bg = _background(image)
        ink = _ink_mask(image, bg)
        ys, xs = np.nonzero(ink)
        assert xs.size, f"nothing drawn for {text!r}"
        assert xs.min() >= 2 and ys.min() >= 2, f"ink reaches the top/left border for {text!r}"
        assert xs.max() < image.width - 2 and ys.max() < image.height - 2, f"ink clipped for {text!r}"
        # The strongest ink pixel is the text colour itself; it must read against the background.
        pixels = np.asarray(image, dtype=np.int16)[ink]
        far = pixels[np.abs(pixels - np.asarray(bg)).sum(axis=1).argmax()]
        assert contrast_ratio(tuple(int(c) for c in far), bg) >= 4.5


def test_long_text_wraps_and_keeps_every_word() -> None:
    text = "The quick brown fox jumps over the lazy dog"
    sample = transcription_sample(text, random.Random(3), width_range=(96, 96), height_range=(128, 128))
    assert len(sample.meta["lines"]) > 1
    assert " ".join(sample.meta["lines"]).split() == text.split()
    assert sample.answer == text and sample.question == TRANSCRIBE_QUESTION


def test_text_that_cannot_fit_raises_clear_error() -> None:
    with pytest.raises(TextDoesNotFit, match="does not fit"):
        render_text("x" * 400, random.Random(0), width_range=(32, 32), height_range=(32, 32), min_font_px=12)
    with pytest.raises(ValueError, match="no glyph"):
        render_text("漢字", random.Random(0))


def test_rendering_is_deterministic_per_seed() -> None:
    def draw(seed: int) -> bytes:
        return render_text("Seeded text 42", random.Random(seed), noise_prob=1.0).tobytes()

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    a = arithmetic_sample(random.Random(1))
    b = arithmetic_sample(random.Random(1))
    assert (a.text, a.answer, a.image.tobytes()) == (b.text, b.answer, b.image.tobytes())


@pytest.mark.parametrize("seed", range(10))
def test_easy_arithmetic_stays_legible_at_64px(seed: int) -> None:
    sample = arithmetic_sample(random.Random(seed), operand_range=(0, 9), legible_at=64, noise_prob=0.0)
    bg = _background(sample.image)
    small = sample.image.resize((64, 64), Image.BILINEAR)
    ink = np.abs(np.asarray(small, np.int16) - np.asarray(bg, np.int16)).sum(-1) > 60
    rows = np.nonzero(ink.any(axis=1))[0]
    # Digits are cap-height glyphs: each text line must still span >= ~12 rows after the resize.
    runs = np.split(rows, np.nonzero(np.diff(rows) > 1)[0] + 1)
    assert max(len(run) for run in runs) >= 11, sample.meta
    assert sample.meta["cap_height_px"] * 64 / max(sample.image.size) >= 12


def test_arithmetic_answers_are_correct() -> None:
    rng = random.Random(0)
    for _ in range(60):
        s = arithmetic_sample(rng, operand_range=(0, 30), width_range=(160, 256), height_range=(64, 128))
        a, b, op = s.meta["a"], s.meta["b"], s.meta["op"]
        assert int(s.answer) == {"+": a + b, "-": a - b, "x": a * b}[op] >= 0
        assert s.question == ARITHMETIC_QUESTION
        flat = s.text.replace("\n", " ").replace(" ", "")
        assert flat.startswith(f"{a}") and flat.endswith("=?") and f"{b}=" in flat


def test_formula_renders_with_mathtext_layout() -> None:
    opts = {"font_px_range": (30, 30), "padding_range": (0, 0), "fontsets": ("cm",), "noise_prob": 0.0}
    frac = render_formula(r"$\frac{3}{4} + x^2$", random.Random(0), **opts)
    plain = render_formula("x", random.Random(0), **opts)  # bare formula gets $...$ added
    assert frac.height > 1.5 * plain.height  # the fraction is stacked, not typed out as text
    assert _ink_mask(frac, _background(frac)).mean() > 0.02
    sample = formula_sample(r"$\sqrt{x} + y_1$", random.Random(2))
    assert sample.answer == r"\sqrt{x} + y_1"
    with pytest.raises(ValueError, match="frac"):
        render_formula(r"$\frac{3}{$", random.Random(0))


def test_random_text_difficulty_knobs() -> None:
    rng = random.Random(0)
    texts = [random_text(rng, length_range=(2, 4), alphabet="01") for _ in range(50)]
    assert all(2 <= len(t) <= 4 and set(t) <= {"0", "1"} for t in texts)
    assert random_text(rng, length_range=(3, 3), words=("cat",)) == "cat cat cat"


# ----------------------------------------------------------------------------- GUI screens


def _check_screen(screen) -> None:
    pixels = np.asarray(screen.image, dtype=np.int16)
    assert pixels.shape == (screen.height, screen.width, 3)
    labels = [e.label for e in screen.elements]
    assert len(labels) == len(set(labels)), labels
    for i, e in enumerate(screen.elements):
        x0, y0, x1, y1 = e.box
        assert 0 < x0 <= x1 < screen.width - 1 and 0 < y0 <= y1 < screen.height - 1, e
        for other in screen.elements[i + 1:]:
            ox0, oy0, ox1, oy1 = other.box
            assert x1 < ox0 or ox1 < x0 or y1 < oy0 or oy1 < y0, (e, other)
        # Drawn, and tightly: every edge of the box carries pixels unlike the surface around it.
        surface = pixels[(y0 + y1) // 2, x0 - 1]
        differs = np.abs(pixels[y0: y1 + 1, x0: x1 + 1] - surface).sum(-1) > 0
        assert differs.mean() > 0.05, e
        assert differs[0].any() and differs[-1].any() and differs[:, 0].any() and differs[:, -1].any(), e
        instruction, answer = click_sample(screen, e)
        assert e.label in instruction
        point = parse_point(answer)
        assert point is not None
        assert e.contains(*to_pixels(*point, screen.width, screen.height)), (e, answer)


@pytest.mark.parametrize("seed", range(12))
def test_default_screens_have_disjoint_drawn_boxes(seed: int) -> None:
    screen = synth_screen(random.Random(seed))
    assert 3 <= len([e for e in screen.elements if e.kind != "menu"]) <= 8
    _check_screen(screen)


@pytest.mark.parametrize("seed", range(6))
def test_large_screen_clicks_round_trip(seed: int) -> None:
    _check_screen(synth_screen(random.Random(seed), size=(1920, 1080), menu_bar=True, dark=bool(seed % 2)))


@pytest.mark.parametrize("seed", range(8))
def test_easy_screen_knobs(seed: int) -> None:
    vocab = ("OK", "Cancel", "Save", "Open")
    screen = synth_screen(random.Random(seed), size=(320, 240), n_elements=(2, 3), vocabulary=vocab,
                          kinds=("button",), menu_bar=False, legible_at=128)
    assert (screen.width, screen.height) == (320, 240)
    assert 2 <= len(screen.elements) <= 3
    assert {e.kind for e in screen.elements} == {"button"}
    assert {e.label for e in screen.elements} <= set(vocab)
    for e in screen.elements:  # a big target: at least ~1/20 of the side after a 128 px resize
        assert (e.box[2] - e.box[0]) * 128 / 320 >= 20 and (e.box[3] - e.box[1]) * 128 / 320 >= 12
    _check_screen(screen)


def test_screens_are_deterministic_and_vary() -> None:
    a, b = synth_screen(random.Random(4)), synth_screen(random.Random(4))
    assert a.image.tobytes() == b.image.tobytes() and a.elements == b.elements
    kinds = set()
    for seed in range(20):
        kinds |= {e.kind for e in synth_screen(random.Random(seed)).elements}
    assert kinds >= set(KINDS) | {"menu"}


def test_click_sample_templates_and_errors() -> None:
    screen = synth_screen(random.Random(0), kinds=("button",), n_elements=(2, 2), menu_bar=False)
    e = screen.elements[0]
    instruction, answer = click_sample(screen, e)
    assert instruction == f'Click "{e.label}".' and answer.startswith("(")
    wordings = {click_sample(screen, e, random.Random(s))[0] for s in range(30)}
    assert len(wordings) > 2
    other = synth_screen(random.Random(1), kinds=("icon",), n_elements=(1, 1), menu_bar=False).elements[0]
    with pytest.raises(ValueError, match="not on this screen"):
        click_sample(screen, other)
    with pytest.raises(ScreenLayoutError, match="fewer than 8"):
        synth_screen(random.Random(0), size=(320, 240), n_elements=(8, 8), legible_at=64)
    with pytest.raises(ValueError, match="unknown element kinds"):
        synth_screen(random.Random(0), kinds=("slider",))
