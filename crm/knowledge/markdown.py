"""Article bodies: a safe subset of Markdown rendered to GOV.UK Frontend typography."""
import re

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# CommonMark without raw HTML: an editor's <script> stays text, and nh3 cleans whatever is left.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")
_TAGS = {"p", "h2", "h3", "h4", "ul", "ol", "li", "a", "strong", "em", "code", "pre", "blockquote", "hr", "br"}
_CLASSES = {
    "p": "govuk-body", "h1": "govuk-heading-l", "h2": "govuk-heading-m", "h3": "govuk-heading-s", "h4": "govuk-heading-s",
    "ul": "govuk-list govuk-list--bullet", "ol": "govuk-list govuk-list--number", "a": "govuk-link",
    "blockquote": "govuk-inset-text", "hr": "govuk-section-break govuk-section-break--m govuk-section-break--visible",
}
_OPEN_TAG = re.compile(r"<(p|h1|h2|h3|h4|ul|ol|a|blockquote|hr)(?=[\s>/])")


def render(body: str) -> Markup:
    """Return the article body as safe HTML with GOV.UK classes; a level-one heading becomes level two."""
    html = _markdown.render(body or "").replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    html = nh3.clean(html, tags=_TAGS, attributes={"a": {"href"}}, url_schemes={"http", "https", "mailto", "tel"},
                     link_rel="noopener noreferrer")
    return Markup(_OPEN_TAG.sub(lambda m: f'<{m.group(1)} class="{_CLASSES[m.group(1)]}"', html))


def plain_text(body: str) -> str:
    """Return the words of a Markdown body without its markup (for search and summaries)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _markdown.render(body or ""))).strip()
