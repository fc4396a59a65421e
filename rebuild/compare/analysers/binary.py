"""The fallback for members no analyser can look into: sizes and hashes, nothing more.

Used for binaries and ELF objects until a kind-specific analyser exists, and for any kind the
caller's analysers do not handle. A member that ends here is listed as unanalysed, so that a
reviewer knows the tool could say no more than "these bytes differ".
"""

from __future__ import annotations

from rebuild.compare.analysers import MemberKind, MemberPair
from rebuild.models import Divergence, DivergenceKind


class BinaryAnalyser:
    """Reports that the bytes differ, with both sizes and hashes."""

    name = "binary"
    kinds = frozenset(MemberKind)

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        delta = pair.rebuilt.size - pair.published.size
        if delta:
            change = f"size {pair.published.size:,} -> {pair.rebuilt.size:,} bytes ({delta:+,})"
        else:
            change = f"same size ({pair.published.size:,} bytes)"
        return [
            Divergence(
                kind=DivergenceKind.CONTENT,
                summary=f"{pair.kind.value} content differs: {change}; not analysed further",
                member=pair.name,
                published=pair.published.describe(),
                rebuilt=pair.rebuilt.describe(),
                analyser=self.name,
            )
        ]


FALLBACK = BinaryAnalyser()
