"""The admin pages' shared frame: one HTML skeleton with the nav, the stylesheet and the
page's own script modules, all served by the admin listener (nothing from a CDN)."""

from __future__ import annotations

from html import escape

STATIC = "/static"  # where the admin app serves ivr/web/static/
PAGES = (("/phone", "Phone"), ("/flows", "Flows"), ("/dashboard", "Dashboard"))


def page(title: str, body: str, scripts: list[str] | None = None, current: str = "") -> str:
    """A whole page: `title` (plain text, escaped here), `body` (HTML, trusted: escape what
    it holds yourself), `scripts` (file names under ivr/web/static/, loaded as modules).
    `current` is the nav path shown as the page you are on (default: guessed from title)."""
    here = current or next((p for p, name in PAGES if name.lower() == title.lower()), "")
    links = "".join(
        f'<li><a href="{p}"{" aria-current=page" if p == here else ""}>{name}</a></li>'
        for p, name in PAGES
    )
    tags = "".join(
        f'<script type="module" src="{STATIC}/{escape(s)}"></script>' for s in scripts or []
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)} · ivr</title>"
        f'<link rel="stylesheet" href="{STATIC}/ivr.css">{tags}</head>'
        '<body><a class="skip" href="#main">Skip to content</a>'
        f'<header><nav aria-label="ivr admin"><span class="brand">ivr</span><ul>{links}</ul>'
        "</nav></header>"
        f'<main id="main" tabindex="-1"><h1>{escape(title)}</h1>{body}</main></body></html>\n'
    )
