"""Checks on screenshots: the right size, not blank, and the colours that mark each state.

The colours come from web/src/style.css. Pixel-exact references are not compared: font
rendering differs between Chromium builds, but these regions and colours do not.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageStat
from playwright.sync_api import Page

from tests.ui.conftest import VIEWPORT

APPROVE_GREEN = (0x1F, 0x8A, 0x4C)
DENY_RED = (0xC2, 0x35, 0x2B)
APPROVAL_AMBER = (0xF0, 0xC3, 0x6D)
ERROR_PINK = (0xFD, 0xEC, 0xEA)
CODE_GREY = (0xEC, 0xEF, 0xF4)
USER_BLUE = (0xE6, 0xEF, 0xFF)

Box = tuple[int, int, int, int]


def shot(page: Page, directory: Path, name: str) -> Image.Image:
    """A screenshot of the viewport, saved as *name*.png and checked to be a real page."""
    path = directory / f"{name}.png"
    page.screenshot(path=str(path))
    image = Image.open(path).convert("RGB")
    viewport = page.viewport_size or VIEWPORT
    assert image.size == (viewport["width"], viewport["height"])
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"{name}: the screenshot is (nearly) blank"
    assert max(ImageStat.Stat(image).stddev) > 10, f"{name}: no contrast"
    return image


def count_colour(image: Image.Image, rgb: tuple[int, int, int], box: Box | None = None, tol: int = 3) -> int:
    """How many pixels (in *box*) are within *tol* of *rgb* on every channel."""
    region = image.crop(box) if box else image
    diff = ImageChops.difference(region, Image.new("RGB", region.size, rgb))
    r, g, b = diff.split()
    worst = ImageChops.lighter(ImageChops.lighter(r, g), b)
    return worst.point(lambda v: 255 if v <= tol else 0).histogram()[255]


def differs(a: Image.Image, b: Image.Image, box: Box) -> float:
    """Mean absolute difference of two screenshots inside *box* (0 = identical)."""
    diff = ImageChops.difference(a.crop(box), b.crop(box))
    return sum(ImageStat.Stat(diff).mean) / 3
