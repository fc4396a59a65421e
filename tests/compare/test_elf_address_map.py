"""Looking a section up by address: bisection must find what a scan in table order finds.

Sections may overlap (``.tbss`` lies over what follows it, and a hostile object may make any
overlap): the section an address belongs to is the first of the table that holds it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.compare.elf_read import SHF_ALLOC, Section, _AddressMap


def _scan(sections: list[Section], addr: int) -> Section | None:
    return next((s for s in sections if s.addr <= addr < s.addr + s.size), None)


_SECTION = st.builds(
    lambda index, addr, size: Section(
        f".s{index}", "SHT_PROGBITS", SHF_ALLOC, addr, addr, size, "", True
    ),
    st.integers(0, 10**6),
    st.integers(0, 300),
    st.integers(0, 120),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SECTION, max_size=25))
def test_bisection_finds_the_first_section_a_scan_finds(sections: list[Section]) -> None:
    lookup = _AddressMap(sections)
    probes = {p for s in sections for a in (s.addr, s.addr + s.size) for p in (a - 1, a, a + 1)}
    for addr in sorted(probes | {0, 10**9}):
        assert lookup.at(addr) is _scan(sections, addr), addr


def test_many_sections_are_mapped_in_one_sweep() -> None:
    # A hostile object's 10,000 nested sections: every piece still has its first holder.
    sections = [
        Section(f".s{i}", "SHT_PROGBITS", SHF_ALLOC, i, i, 20_000 - 2 * i, "", True)
        for i in range(10_000)
    ]
    lookup = _AddressMap(sections)
    for addr in (0, 1, 4_999, 9_999, 10_000, 19_999, 20_000):
        assert lookup.at(addr) is _scan(sections, addr), addr
