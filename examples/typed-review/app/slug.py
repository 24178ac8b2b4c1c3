"""Turn a title into the last part of a URL: ``slugify("Hello, World!") == "hello-world"``."""

import re
import unicodedata


def slugify(title: str) -> str:
    """Lowercase ASCII words of ``title`` joined by ``-``; accents are dropped, not the letters."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def unique(slug: str, taken: set[str]) -> str:
    """``slug``, or ``slug-2``, ``slug-3``... the first that is not in ``taken``."""
    candidate, number = slug, 1
    while candidate in taken:
        number += 1
        candidate = f"{slug}-{number}"
    return candidate
