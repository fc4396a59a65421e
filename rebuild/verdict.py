"""The one place a verdict is decided, from the divergences and the source checks' findings.

Every path that reports a verdict (``compare``, ``check``, ``provenance``, a batch reusing a
stored result) calls :func:`decide`, so that they cannot disagree. It errs one way only: a wheel
is called reproducible only when its bytes are the published ones, and equivalent only when no
member differs and nothing at all is unexplained.
"""

from __future__ import annotations

from collections.abc import Iterable

from rebuild.models import Divergence, Layer, Side, Verdict


def _member_level(d: Divergence) -> bool:
    """A member differs, or one wheel alone breaks its own integrity."""
    return d.layer is Layer.MEMBER or (d.layer is Layer.INTEGRITY and d.side is not Side.BOTH)


def decide(
    divergences: Iterable[Divergence],
    *,
    identical_bytes: bool = False,
    source_findings: Iterable[Divergence] = (),
) -> Verdict:
    """The verdict of a comparison (``divergences``) and of the source checks.

    ``identical_bytes``: the rebuilt wheel file is the published one. Source findings left
    unexplained make any verdict divergent: a rebuild that matches a source which is not
    upstream's proves nothing.
    """
    found = list(divergences)
    if any(not d.explained for d in source_findings):
        return Verdict.DIVERGENT
    if identical_bytes:
        return Verdict.REPRODUCIBLE
    if any(_member_level(d) or not d.explained for d in found):
        return Verdict.DIVERGENT
    return Verdict.EQUIVALENT


def decide_source_only(findings: Iterable[Divergence]) -> Verdict:
    """The verdict of the source checks alone (``rebuild provenance``, no build)."""
    return Verdict.DIVERGENT if any(not d.explained for d in findings) else Verdict.EQUIVALENT


__all__ = ["decide", "decide_source_only"]
