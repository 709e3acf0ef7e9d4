from hypothesis import given
from hypothesis import strategies as st

from projects.web.colors import (
    PALETTE,
    contrast_ratio,
    darken_to_contrast,
    label_colors,
    relative_luminance,
    schema_colors,
    text_color_for,
)

hex_colors = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(
    lambda rgb: "#" + "".join(f"{c:02x}" for c in rgb)
)


def test_known_contrast_values():
    assert round(contrast_ratio("#000000", "#ffffff"), 2) == 21.0
    assert round(contrast_ratio("#777777", "#ffffff"), 2) == 4.48
    assert contrast_ratio("#abc", "#aabbcc") == 1.0
    assert relative_luminance("#ffffff") == 1.0 and relative_luminance("#000") == 0.0


@given(hex_colors)
def test_text_colour_always_reaches_aa(background):
    assert contrast_ratio(background, text_color_for(background)) >= 4.5


@given(hex_colors)
def test_underline_reaches_three_to_one_on_white(color):
    assert contrast_ratio(darken_to_contrast(color), "#ffffff") >= 3.0


def test_every_palette_and_custom_colour_passes():
    names = [f"L{i}" for i in range(len(PALETTE) + 3)]
    colors = label_colors(names, {"L0": "#ffff00", "L1": "not-a-colour", "L2": "#FFF"})
    assert colors["L0"]["bg"] == "#ffff00" and colors["L0"]["fg"] == "#000000"
    assert colors["L1"]["bg"] == PALETTE[1]  # invalid custom colours fall back to the palette
    for c in colors.values():
        assert contrast_ratio(c["bg"], c["fg"]) >= 4.5
        assert contrast_ratio(c["line"], "#ffffff") >= 3.0
        assert contrast_ratio(c["tint"], "#1f2328") >= 7.0  # article text over a highlight


def test_schema_colours_are_keyed_by_field_and_label():
    schema = {"fields": [{"name": "e", "type": "spans", "labels": ["A", "B"]}, {"name": "t", "type": "text"}]}
    assert set(schema_colors(schema)) == {"e"} and set(schema_colors(schema)["e"]) == {"A", "B"}
