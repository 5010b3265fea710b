"""mkdocs hook: links from the Markdown pages to source files outside docs/.

The pages in docs/ link to code (``[ramp_signal](../theory/ramp.py)``) so that
they work when read on GitHub. Those files are not part of the site; on the
site the link text stays and the link goes (the API reference has the code).
"""
from __future__ import annotations

import re

# a Markdown link whose target leaves docs/ (starts with ../) and is not a page or an image of the site
_OUTSIDE = re.compile(r"(?<!!)\[([^\]]+)\]\((\.\./[^)\s]+)\)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri.startswith("tutorials/"):
        return markdown
    return _OUTSIDE.sub(lambda m: m.group(1), markdown)
