"""HTML from email, made safe for the console (the web layer calls ``sanitize_html``).

Email HTML is hostile by default: scripts, event handlers, forms, remote images that track
the reader (web beacons) and CSS that can overlay the console. nh3 (ammonia) keeps a small
allow-list of formatting tags; remote images are dropped, ``cid:`` and ``data:`` images stay.
"""

from __future__ import annotations

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "font", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "*": {"dir", "lang"},
}


def _drop_remote_images(element: str, attribute: str, value: str) -> str | None:
    if element == "img" and attribute == "src":
        lowered = value.strip().lower()
        return value if lowered.startswith(("cid:", "data:image/")) else None
    return value


def sanitize_html(html: str) -> str:
    """Safe HTML to embed in the console; links open in a new tab without a referrer."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto", "cid", "data"},
        attribute_filter=_drop_remote_images,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
