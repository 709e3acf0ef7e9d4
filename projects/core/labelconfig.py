"""Import a Label Studio labeling config (XML) into our label schema.

=============================================  =============================================
Label Studio tag                               our field
=============================================  =============================================
``<Choices choice="single|multiple">``         ``choice`` (options from ``<Choice value|alias>``)
``<Labels>`` / ``<HyperTextLabels>``           ``spans`` (``background`` → colours, ``hotkey``)
``<TextArea value="$response">``               ``text`` with ``prefill: payload.response``
``<Rating maxRating="5">``                     ``rating``: Ratings with the same ``maxRating`` are
                                               one field whose criteria are their names
``<Pairwise toName="a,b">``                    ``pairwise`` between the ``$vars`` of Text a and b
``<Header value>`` before a control            the field's ``title``
=============================================  =============================================

``required="true"`` carries over. Anything else (Taxonomy, Number, DateTime, image tags…) is
listed in the warnings and left out. Parsing goes through defusedxml: DTDs, entities and
external references are refused. Pure module: no ORM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from projects.core.exceptions import ValidationFailed
from projects.core.schema import validate_schema

MAX_CONFIG_BYTES = 1_000_000
VAR_RE = re.compile(r"^\$([A-Za-z0-9_\-.]{1,200})$")
HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# Common CSS colour names seen in Label Studio templates.
NAMED_COLORS = {
    "red": "#ff0000", "green": "#008000", "blue": "#0000ff", "orange": "#ffa500", "darkorange": "#ff8c00",
    "yellow": "#ffff00", "purple": "#800080", "pink": "#ffc0cb", "brown": "#a52a2a", "gray": "#808080",
    "grey": "#808080", "black": "#000000", "cyan": "#00ffff", "magenta": "#ff00ff", "violet": "#ee82ee",
    "lime": "#00ff00", "teal": "#008080", "navy": "#000080", "maroon": "#800000", "olive": "#808000",
    "gold": "#ffd700", "salmon": "#fa8072", "crimson": "#dc143c", "indigo": "#4b0082", "coral": "#ff7f50",
    "tomato": "#ff6347", "orangered": "#ff4500", "dodgerblue": "#1e90ff", "seagreen": "#2e8b57",
    "darkblue": "#00008b", "darkgreen": "#006400", "darkred": "#8b0000", "lightblue": "#add8e6",
    "lightgreen": "#90ee90",
}  # fmt: skip
SPAN_TAGS = {"labels", "hypertextlabels"}
CONTROL_TAGS = {"choices", "textarea", "rating", "pairwise"} | SPAN_TAGS
LAYOUT_TAGS = {"view", "header", "text", "hypertext", "style", "filter", "choice", "label", "collapse", "panel"}


@dataclass
class ConfigImport:
    schema: dict
    warnings: list[str] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _color(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    if HEX_RE.match(value):
        return value
    return NAMED_COLORS.get(value)


class _Names:
    """Field names valid for our schema (letters, digits, _ and -), unique."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, raw: str | None, fallback: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_\-]", "_", (raw or "").strip())[:60] or fallback
        if not re.match(r"^[A-Za-z_]", name):
            name = "f_" + name
        base, n = name, 2
        while name in self.used:
            name = f"{base}_{n}"
            n += 1
        self.used.add(name)
        return name


def _items(control: Element, child_tag: str, warnings: list[str], where: str) -> tuple[list[str], dict, dict]:
    values: list[str] = []
    hotkeys: dict[str, str] = {}
    colors: dict[str, str] = {}
    for child in control.iter():
        if _local(child.tag) != child_tag:
            continue
        value = (child.get("alias") or child.get("value") or "").strip()
        if not value:
            warnings.append(f"{where}: a <{child_tag.title()}> without a value was left out")
            continue
        if value in values:
            warnings.append(f"{where}: duplicate {value!r} left out")
            continue
        values.append(value)
        hotkey = (child.get("hotkey") or "").strip()
        if hotkey:
            if len(hotkey) == 1:
                hotkeys[value] = hotkey.lower()
            else:
                warnings.append(f"{where}: hotkey {hotkey!r} for {value!r} is not a single key; a default key is used")
        color = _color(child.get("background"))
        if color:
            colors[value] = color
    return values, hotkeys, colors


def labelconfig_to_schema(xml: str | bytes) -> ConfigImport:
    """Convert a Label Studio labeling config to our schema; raise ``ValidationFailed`` if unusable."""
    raw = xml.encode() if isinstance(xml, str) else xml
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValidationFailed("The labeling config is larger than 1 MB.", fields={"config": "too large"})
    try:
        root = fromstring(raw)
    except DefusedXmlException:
        raise ValidationFailed(
            "The labeling config uses a DTD or entities, which are not allowed.", fields={"config": "DTD or entity"}
        ) from None
    except ParseError as exc:
        raise ValidationFailed(f"The labeling config is not valid XML: {exc}.", fields={"config": str(exc)}) from None
    warnings: list[str] = []
    names = _Names()
    text_vars: dict[str, str] = {}
    for node in root.iter():
        if _local(node.tag) in ("text", "hypertext") and node.get("name"):
            match = VAR_RE.match((node.get("value") or "").strip())
            if match:
                text_vars[node.get("name")] = match.group(1)
    fields: list[dict] = []
    ratings: dict[int, dict] = {}
    header: str | None = None
    for node in root.iter():
        tag = _local(node.tag)
        if tag == "header":
            header = (node.get("value") or node.text or "").strip() or None
            continue
        if tag not in CONTROL_TAGS:
            if tag not in LAYOUT_TAGS:
                warnings.append(f"<{node.tag}> is not supported and was left out")
            continue
        where = f"<{node.tag} name={node.get('name')!r}>"
        title, header = header, None
        out: dict = {}
        if tag == "choices":
            options, hotkeys, _ = _items(node, "choice", warnings, where)
            if len(options) < 2:
                warnings.append(f"{where}: needs at least two choices; left out")
                continue
            out = {"type": "choice", "options": options, "multiple": node.get("choice", "single") == "multiple"}
            if hotkeys:
                out["hotkeys"] = hotkeys
        elif tag in SPAN_TAGS:
            labels, hotkeys, colors = _items(node, "label", warnings, where)
            if not labels:
                warnings.append(f"{where}: has no labels; left out")
                continue
            out = {"type": "spans", "labels": labels}
            if hotkeys:
                out["hotkeys"] = hotkeys
            if colors:
                out["colors"] = colors
        elif tag == "textarea":
            out = {"type": "text"}
            value = (node.get("value") or "").strip()
            match = VAR_RE.match(value)
            if match:
                out["prefill"] = f"payload.{match.group(1)}"
            elif value:
                warnings.append(f"{where}: a fixed prefill text is not supported; left empty")
        elif tag == "rating":
            try:
                top = int(node.get("maxRating", "5"))
            except ValueError:
                top = 5
                warnings.append(f"{where}: maxRating is not a number; 5 is used")
            top = min(max(top, 2), 100)
            group = ratings.get(top)
            criterion = (node.get("name") or f"criterion_{len(ratings) + 1}").strip()
            if group is None:
                group = {"type": "rating", "criteria": [], "scale": [1, top], "name": "rating"}
                ratings[top] = group
                fields.append(group)
            if criterion not in group["criteria"]:
                group["criteria"].append(criterion)
            if _truthy(node.get("required")):
                group["required"] = True
            continue
        elif tag == "pairwise":
            targets = [t.strip() for t in (node.get("toName") or "").split(",") if t.strip()]
            paths = [text_vars.get(t) for t in targets]
            if len(targets) != 2 or not all(paths):
                warnings.append(f"{where}: toName must name two <Text> tags with $variables; left out")
                continue
            out = {"type": "pairwise", "between": [f"payload.{p}" for p in paths]}
        out["name"] = names.make(node.get("name"), f"field_{len(fields) + 1}")
        if title:
            out["title"] = title[:2000]
        if _truthy(node.get("required")):
            out["required"] = True
        fields.append(out)
    rating_groups = [f for f in fields if f["type"] == "rating"]
    for group in rating_groups:
        group["name"] = names.make("rating" if len(rating_groups) == 1 else f"rating_{group['scale'][1]}", "rating")
    if not fields:
        raise ValidationFailed(
            "The labeling config has no supported control tags (Choices, Labels, TextArea, Rating, Pairwise).",
            fields={"config": "no supported controls"},
        )
    ordered = [{"name": f.pop("name"), **f} for f in fields]
    return ConfigImport(schema=validate_schema({"fields": ordered}), warnings=warnings)
