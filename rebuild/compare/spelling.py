"""Metadata written by older tools: the same values in another spelling, and nothing more.

Older setuptools and wheel wrote ``Requires-Dist: botocore (<1.45.0,>=1.44.8)`` where today's
write ``botocore<1.45.0,>=1.44.8``, and single-quoted markers (``extra == 'crt'``) where today's
double-quote them. A Windows build writes METADATA with CRLF line endings. Neither changes what an
installer reads, and each is decided here from the values themselves: a requirement is parsed
with packaging's ``Requirement`` and compared field by field (name, extras, each specifier,
marker, URL), a line-ending difference only when the bytes are the other side's once every CRLF
is read as LF. Anything else (a changed bound, an extra added, a marker changed, a value on one
side only) is not the same meaning, and is left for a reviewer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement

from rebuild.requires_dist import PARENTHESISED

# A requirement as an installer reads it. Names and extras are compared as written, not
# normalised: the class seen (older tools) keeps them, and a narrower rule refuses more.
RequirementKey = tuple[str, tuple[str, ...], tuple[str, ...], str | None, str | None]

_MAX_VALUES = 1000  # requirements compared at most; a longer list is not judged


def requirement_key(text: str) -> RequirementKey | None:
    """The parsed fields of one ``Requires-Dist`` value, or None if it does not parse."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    return (
        req.name,
        tuple(sorted(req.extras)),
        # Each specifier as packaging prints it (operator and version as written); their order
        # in the set does not matter to an installer.
        tuple(sorted(str(s) for s in req.specifier)),
        None if req.marker is None else str(req.marker),
        req.url,
    )


def _styles(values: Sequence[str]) -> list[str]:
    found = []
    if any(PARENTHESISED.match(v) for v in values):
        found.append("parenthesised version specifiers")
    if any("'" in v.partition(";")[2] for v in values):
        found.append("single-quoted markers")
    return found


def requirements_respelled(removed: Sequence[str], added: Sequence[str]) -> str | None:
    """The likely cause when ``removed`` (published) and ``added`` (rebuilt) are the same
    requirements in another spelling, as multisets; None when any value's meaning differs.

    Both lists must be non-empty, of one length, every value must parse, and the parsed values
    must be equal one for one: a requirement dropped, added, duplicated or changed in any field
    is refused, so the dependency set an installer resolves is the same on both sides.
    """
    if not removed or len(removed) != len(added) or len(removed) > _MAX_VALUES:
        return None
    old = [requirement_key(v) for v in removed]
    new = [requirement_key(v) for v in added]
    if None in old or None in new or Counter(old) != Counter(new):
        return None
    for side, values in (("published", removed), ("rebuilt", added)):
        styles = _styles(values)
        if styles:
            return f"the {side} wheel's were written by an older setuptools/wheel: " + " and ".join(
                styles
            )
    return "the same requirements, spelled with other spacing or quoting"


def crlf_of(published: bytes, rebuilt: bytes) -> bool:
    """Whether ``published`` is ``rebuilt`` with every line ending written CRLF instead of LF.

    Exactly that: the rebuilt file has no CR at all, and the published one is the rebuilt one
    with each LF preceded by a CR (so no lone CR, no mixed endings). Both must parse as core
    metadata to the same fields, the description compared with CRLF read as LF.
    """
    if b"\r" in rebuilt or b"\n" not in rebuilt or published != rebuilt.replace(b"\n", b"\r\n"):
        return False
    try:
        old, old_unparsed = parse_email(published)
        new, new_unparsed = parse_email(rebuilt)
    except ValueError:
        return False
    description = old.get("description")
    if isinstance(description, str):
        old["description"] = description.replace("\r\n", "\n")
    return old == new and old_unparsed == new_unparsed


__all__ = ["crlf_of", "requirement_key", "requirements_respelled"]
