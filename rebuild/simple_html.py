"""PEP 503 project pages (HTML), read into the shape of a PEP 691 JSON page.

Many private indexes serve only HTML: pypiserver, a plain web server over ``dir2pi`` output,
older Nexus and Artifactory. pip and uv read them; so does rebuild, preferring JSON when the
index offers both. Each ``<a>`` is one file: its text or URL path gives the filename, the URL
fragment ``#sha256=…`` its hash (PEP 503), ``data-requires-python``, ``data-yanked`` and
``data-dist-info-metadata`` / ``data-core-metadata`` (PEP 658/714) the rest. HTML pages carry
no upload time (PEP 700 is JSON only): the caller must say what it time-warps from instead.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

MAX_LINKS = 100_000  # files on one project page; PyPI's largest pages hold tens of thousands


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[dict[str, str | None]] = []
        self.overflow = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            if len(self.links) >= MAX_LINKS:
                self.overflow = True
                return
            self.links.append(dict(attrs))


def _hash_of(fragment: str) -> dict[str, str]:
    name, _, value = fragment.partition("=")
    if name in ("sha256", "sha384", "sha512", "md5") and value:
        return {name: value.lower()}
    return {}


def _metadata(value: str | None) -> bool | dict[str, str]:
    """A ``data-core-metadata`` value: "true", or "sha256=<hex>"; absent: False."""
    if value is None:
        return False
    hashes = _hash_of(value)
    return hashes or value.lower() == "true"


def parse_project_page(html: str, page_url: str) -> dict[str, object]:
    """The files an HTML page links to, as PEP 691 JSON would list them.

    Raises ValueError when the page has more links than :data:`MAX_LINKS`.
    """
    parser = _Links()
    parser.feed(html)
    parser.close()
    if parser.overflow:
        raise ValueError(f"more than {MAX_LINKS:,} links")
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files: list[dict[str, object]] = []
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = urljoin(base, href)
        parts = urlsplit(url)
        filename = unquote(parts.path.rsplit("/", 1)[-1])
        if not filename:
            continue
        entry: dict[str, object] = {
            "filename": filename,
            "url": urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")),
            "hashes": _hash_of(parts.fragment),
        }
        if attrs.get("data-requires-python"):
            entry["requires-python"] = attrs["data-requires-python"]
        if "data-yanked" in attrs:
            entry["yanked"] = attrs["data-yanked"] or True
        metadata = _metadata(attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata")))
        if metadata:
            entry["core-metadata"] = metadata
        files.append(entry)
    return {"meta": {"api-version": "1.0", "format": "html"}, "files": files}
