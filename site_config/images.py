"""The coach's pictures and the share cards, made at build time with Pillow.

Photos the coach puts in `site_config/images/` (portrait, testimonial photos, client logos) become
responsive AVIF and WebP files with their width and height, so a phone downloads a small file and
the page does not jump while it loads. Each page also gets a share card (`og:image`, 1200x630 PNG):
its title and the coach's name on the site's colours, in a font shipped with the project.

Work is cached in `.cache/images/` under the project (named by a hash of the source and the
settings), so a build only encodes what changed: AVIF encoding and the cards' PNG encoding (about
20 ms a card on this machine, 10 s for 500 posts on a first build) are the slow parts.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, features

from site_config import CONFIG_DIR

FONT_DIR = CONFIG_DIR / "fonts"
OUTPUT = "assets/images"          # below the site folder
CARDS = "assets/og"               # the share cards
CARD_SIZE = (1200, 630)
VERSION = "1"                     # raise when the encoding below changes, to refresh the cache
PETROL, PETROL_DARK, AMBER, SAND = "#1d4f5c", "#143a44", "#b4561d", "#f7f3ee"
AVIF = features.check("avif")     # Pillow 11.3+ wheels have it; without it WebP alone is served


@dataclass(frozen=True)
class Variant:
    """One encoded file: its name below OUTPUT, format, pixel width."""

    name: str
    fmt: str
    width: int


@dataclass(frozen=True)
class Picture:
    """A source image and the files made from it, for a <picture> element."""

    source: Path
    width: int      # of the largest variant (the <img>'s intrinsic size)
    height: int
    variants: tuple[Variant, ...]
    svg: bool = False

    def srcset(self, fmt: str, root: str) -> str:
        return ", ".join(f"{root}{OUTPUT}/{v.name} {v.width}w" for v in self.variants if v.fmt == fmt)

    def fallback(self) -> str:
        """The <img src>: the largest WebP (or the SVG itself)."""
        return f"{OUTPUT}/{self.variants[-1].name}"

    def html(self, root: str, alt: str, sizes: str, css: str = "", eager: bool = False) -> str:
        """A <picture> with AVIF and WebP sources and an <img> with width and height (so nothing jumps
        while it loads). `root` is the way from the page to the site root, e.g. "../"."""
        from html import escape

        loading = 'fetchpriority="high"' if eager else 'loading="lazy" decoding="async"'
        size = f' width="{self.width}" height="{self.height}"' if self.width else ""
        img = f'<img src="{escape(root + self.fallback())}" alt="{escape(alt)}"{size} {loading} class="{css}">'

        if self.svg:
            return img
        sources = "".join(f'<source type="image/{fmt}" srcset="{escape(self.srcset(fmt, root))}" sizes="{sizes}">'
                          for fmt in (("avif", "webp") if AVIF else ("webp",)))
        return f"<picture>{sources}{img}</picture>"


def picture(source: Path, widths: tuple[int, ...]) -> Picture:
    """The variants a source image will get: each width up to the source's own, as AVIF and WebP."""
    digest = hashlib.sha256(source.read_bytes() + VERSION.encode()).hexdigest()[:10]
    stem = source.stem.lower().replace(" ", "-")
    if source.suffix.lower() == ".svg":
        name = f"{stem}-{digest}.svg"
        size = re.search(r'<svg[^>]*?\swidth="(\d+)"[^>]*?\sheight="(\d+)"', source.read_text(encoding="utf-8"))
        width, height = (int(size[1]), int(size[2])) if size else (0, 0)
        return Picture(source, width, height, (Variant(name, "svg", width),), svg=True)
    with Image.open(source) as image:
        full_w, full_h = image.size
    keep = sorted({min(w, full_w) for w in widths})
    variants = tuple(Variant(f"{stem}-{digest}-{w}.{fmt}", fmt, w)
                     for fmt in (("avif", "webp") if AVIF else ("webp",)) for w in keep)
    return Picture(source, keep[-1], round(full_h * keep[-1] / full_w), variants)


def write_picture(pic: Picture, site_dir: Path, cache: Path) -> None:
    """Write the variants into the site, encoding only those not in the cache yet."""
    out = site_dir / OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    image = None
    for variant in pic.variants:
        cached = cache / variant.name
        if not cached.exists():
            if pic.svg:
                shutil.copyfile(pic.source, cached)
            else:
                if image is None:
                    image = Image.open(pic.source)
                    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
                resized = image.resize((variant.width, round(image.height * variant.width / image.width)),
                                       Image.Resampling.LANCZOS)
                options = {"quality": 55, "speed": 6} if variant.fmt == "avif" else {"quality": 78, "method": 4}
                resized.save(cached.with_suffix(".tmp"), format=variant.fmt.upper(), **options)
                cached.with_suffix(".tmp").replace(cached)
        shutil.copyfile(cached, out / variant.name)


# -- share cards -----------------------------------------------------------------------------------------

@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def card_name(page_url: str) -> str:
    """The card's file name below CARDS for a page URL ('' for the home page)."""
    slug = page_url.strip("/").replace("/", "-") or "home"
    return f"{slug}.png"


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Words into lines no wider than `width` pixels in this font."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def render_card(title: str, coach: str, tagline: str) -> Image.Image:
    """Title (up to three lines), then the coach's name and role, on the site's petrol with an amber bar."""
    width, height = CARD_SIZE
    image = Image.new("RGB", CARD_SIZE, PETROL_DARK)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 14), fill=AMBER)
    draw.rectangle((0, height - 150, width, height), fill=PETROL)
    for size in (68, 58, 48):
        font = _font("DejaVuSerif-Bold.ttf", size)
        lines = _wrap(title, font, width - 160)
        if len(lines) <= 3:
            break
    y = 90
    for line in lines[:4]:
        draw.text((80, y), line, font=font, fill="#ffffff")
        y += int(size * 1.25)
    draw.rectangle((80, height - 150 - 40, 200, height - 150 - 34), fill=AMBER)
    draw.text((80, height - 118), coach, font=_font("DejaVuSerif-Bold.ttf", 40), fill="#ffffff")
    draw.text((80, height - 64), tagline, font=_font("DejaVuSerif.ttf", 28), fill=SAND)
    return image


def write_card(site_dir: Path, cache: Path, page_url: str, title: str, coach: str, tagline: str) -> Path:
    """The page's share card in the site, from the cache when title and name did not change."""
    key = hashlib.sha256("\x1f".join((VERSION, title, coach, tagline)).encode()).hexdigest()[:16]
    cached = cache / f"card-{key}.png"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        render_card(title, coach, tagline).save(cached.with_suffix(".tmp"), format="PNG", compress_level=3)
        cached.with_suffix(".tmp").replace(cached)
    target = site_dir / CARDS / card_name(page_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, target)
    return target


WIDTHS = {"portrait": (240, 360, 480, 720), "photo": (96, 192), "logo": (160, 320)}


@cache
def picture_for(photo_file: Path, kind: str) -> Picture:
    """The Picture for one of the coach's photos; the same object for the templates and the writer."""
    return picture(photo_file, WIDTHS[kind])


def site_pictures(settings) -> list[Picture]:
    """Every picture the settings show, for on_post_build to write."""
    pics = []
    if settings.coach.portrait:
        pics.append(picture_for(settings.coach.portrait.file, "portrait"))
    pics += [picture_for(t.photo.file, "photo") for t in settings.testimonials if t.photo]
    pics += [picture_for(c.logo.file, "logo") for c in settings.clients]
    return pics
