"""Label colours that stay readable: WCAG 2 contrast, text colour chosen per background.

Pure functions, no Django: the labeling page gets, for each label, a chip background, the text
colour to print on it (black or white, whichever contrasts more, which is always at least 4.5:1),
and an underline colour darkened until it reaches 3:1 against the white page (non-text contrast).
"""

from __future__ import annotations

import re

HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
WHITE = "#ffffff"
BLACK = "#000000"
# Distinct hues; chip text is picked per colour, so light and dark entries are both fine.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#0b5394",
    "#f1c232",
)


def parse_hex(color: str) -> tuple[int, int, int]:
    if not HEX_RE.match(color):
        raise ValueError(f"not a hex colour: {color!r}")
    digits = color[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of an sRGB hex colour, in [0, 1]."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in parse_hex(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_color_for(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (always >= 4.5:1)."""
    return BLACK if contrast_ratio(background, BLACK) >= contrast_ratio(background, WHITE) else WHITE


def darken_to_contrast(color: str, *, against: str = WHITE, ratio: float = 3.0) -> str:
    """``color`` mixed towards black just enough to reach ``ratio`` against ``against``."""
    rgb = parse_hex(color)
    for step in range(0, 101, 2):
        k = 1 - step / 100
        candidate = to_hex((rgb[0] * k, rgb[1] * k, rgb[2] * k))
        if contrast_ratio(candidate, against) >= ratio:
            return candidate
    return BLACK


def tint(color: str, *, amount: float = 0.22) -> str:
    """A light background made of ``amount`` of ``color`` over white (dark text stays readable)."""
    r, g, b = parse_hex(color)
    return to_hex(tuple(255 - (255 - c) * amount for c in (r, g, b)))


def label_colors(names: list[str], custom: dict | None = None, *, offset: int = 0) -> dict[str, dict[str, str]]:
    """For each name: ``bg`` (chip), ``fg`` (chip text), ``line`` (underline), ``tint`` (highlight)."""
    custom = custom or {}
    out = {}
    for i, name in enumerate(names):
        base = custom.get(name, "")
        if not isinstance(base, str) or not HEX_RE.match(base):
            base = PALETTE[(i + offset) % len(PALETTE)]
        base = to_hex(parse_hex(base))
        out[name] = {
            "bg": base,
            "fg": text_color_for(base),
            "line": darken_to_contrast(base),
            "tint": tint(base),
        }
    return out


def schema_colors(schema: dict) -> dict[str, dict[str, dict[str, str]]]:
    """Colours for every spans field's labels, keyed by field name then label."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    offset = 0
    for field in schema.get("fields", []):
        if field.get("type") == "spans":
            out[field["name"]] = label_colors(field.get("labels", []), field.get("colors"), offset=offset)
            offset += len(field.get("labels", []))
    return out
