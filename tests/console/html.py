"""Reading console pages in tests: tables as rows of cell texts, links, visible text."""

from __future__ import annotations

from lxml import html as lxml_html
from lxml.html import HtmlElement


def page(text: str) -> HtmlElement:
    """The parsed page."""
    return lxml_html.fromstring(text)


def table(text: str, caption: str) -> list[list[str]]:
    """Rows (header row included) of the table whose caption starts with ``caption``."""
    doc = page(text)
    for candidate in doc.iter("table"):
        cap = candidate.find("caption")
        if cap is not None and cap.text_content().strip().startswith(caption):
            return [[" ".join(c.text_content().split()) for c in row.xpath("./th|./td")]
                    for row in candidate.iter("tr")]
    raise AssertionError(f"no table captioned {caption!r}")


def text(html: str) -> str:
    """The page's text with whitespace collapsed."""
    return " ".join(page(html).text_content().split())


def links(html: str) -> list[str]:
    """Every href of the page (SVG links included)."""
    doc = page(html)
    found = [a.get("href") for a in doc.iter("a") if a.get("href")]
    return found
