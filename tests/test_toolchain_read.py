"""Reading what planning needs off the published objects: cheaply, and exactly as before.

Planning reads every shared object of the wheel for its compiler strings and symbol names. The
symbols are parsed with struct rather than pyelftools' own parser, and a member is read into
anonymous memory a chunk at a time: the facts must be the same as pyelftools gives, and a large
member must not be held twice.
"""

from __future__ import annotations

import io
import mmap
import os
import zipfile
from pathlib import Path

import pytest
from compare.wheels import make_wheel
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from helpers_child import run_measured
from test_toolchain import compiled_extension

from rebuild import toolchain
from rebuild.compare.elf_read import compiler_facts, read_elf


def _pyelftools_symbols(data: bytes) -> dict[str, list[tuple[object, ...]]]:
    tables: dict[str, list[tuple[object, ...]]] = {}
    for section in ELFFile(io.BytesIO(data)).iter_sections():
        if isinstance(section, SymbolTableSection) and section["sh_type"] not in tables:
            tables[section["sh_type"]] = [
                (
                    s.name,
                    str(s.entry["st_info"]["type"]),
                    str(s.entry["st_info"]["bind"]),
                    int(s.entry["st_value"]),
                    int(s.entry["st_size"]),
                    s.entry["st_shndx"] != "SHN_UNDEF",
                )
                for s in section.iter_symbols()
            ]
    return tables


def _objects(tmp_path: Path) -> list[bytes]:
    # An extension built here (with .symtab and DWARF), and the interpreter's own shared
    # objects (stripped: .dynsym only), whatever this machine has.
    found = [compiled_extension(tmp_path)]
    for name in ("libc.so.6", "libm.so.6", "libz.so.1", "libstdc++.so.6"):
        for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64"):
            path = Path(folder) / name
            if path.is_file():
                found.append(path.read_bytes())
                break
    assert len(found) >= 2, "no system library to read"
    return found


def test_symbols_are_read_as_pyelftools_reads_them(tmp_path: Path) -> None:
    for data in _objects(tmp_path):
        image = read_elf(data)
        reference = _pyelftools_symbols(data)
        ours = [(s.name, s.kind, s.binding, s.value, s.size, s.defined) for s in image.symbols]
        dynamic = [
            (s.name, s.kind, s.binding, s.value, s.size, s.defined) for s in image.dynamic_symbols
        ]
        assert ours == (reference.get("SHT_SYMTAB") or reference.get("SHT_DYNSYM") or [])
        assert dynamic == reference.get("SHT_DYNSYM", [])
        assert any(s.kind == "STT_FUNC" and s.defined for s in image.symbols)


def test_compiler_facts_are_the_full_readers_from_bytes_or_a_memory_map(tmp_path: Path) -> None:
    for data in _objects(tmp_path):
        image = read_elf(data)
        with mmap.mmap(-1, len(data)) as memory:
            memory[:] = data
            for facts in (compiler_facts(data), compiler_facts(memory)):
                assert facts.comment == image.comment
                assert facts.producers == image.producers
                assert facts.symbol_names == tuple(
                    s.name for s in (*image.symbols, *image.dynamic_symbols)
                )


def test_a_symbol_name_past_its_string_table_is_cut_at_the_table(tmp_path: Path) -> None:
    data = bytearray(compiled_extension(tmp_path))
    elf = ELFFile(io.BytesIO(bytes(data)))
    symtab = elf.get_section_by_name(".symtab")
    assert symtab is not None
    strtab = elf.get_section(symtab["sh_link"])
    # The string table's last byte (its closing NUL) becomes a letter: the last name runs on.
    end = strtab["sh_offset"] + strtab["sh_size"] - 1
    assert data[end] == 0
    data[end] = ord("X")
    last = read_elf(bytes(data)).symbols
    assert any(s.name.endswith("X") for s in last)
    assert all(len(s.name) < strtab["sh_size"] for s in last)


@pytest.mark.parametrize(("declared", "held"), [(10, 10), (10, 9), (10, 11), (0, 0)])
def test_a_member_is_mapped_only_when_it_holds_its_declared_size(declared: int, held: int) -> None:
    with toolchain.mapped(io.BytesIO(b"x" * held), declared) as memory:
        if declared == held and declared:
            assert memory is not None and memory[:] == b"x" * held
        else:
            assert memory is None


def test_planning_a_wheel_with_a_large_object_holds_it_once(tmp_path: Path) -> None:
    # A real object followed by 48 MiB that no ELF header claims (incompressible, as a large
    # library is): read() would hold the member twice; mapped, it is held once.
    padding = 48 * 1024 * 1024
    big = compiled_extension(tmp_path) + os.urandom(padding)
    wheel = make_wheel(
        tmp_path / "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        changes={"demo.libs/libbig.so": big},
    )
    with zipfile.ZipFile(wheel) as zf:
        assert zf.getinfo("demo.libs/libbig.so").compress_size > padding  # stored, not shrunk
    script = (
        "from pathlib import Path\n"
        "from rebuild import toolchain\n"
        "import rebuild.compare.elf_read\n"
        "before = hwm()\n"
        "objects = toolchain.read_objects(Path(sys.argv[1]))\n"
        "print(json.dumps({'grew': hwm() - before, 'members': [o.member for o in objects]}))\n"
    )
    measured = run_measured(script, wheel, timeout=120)
    assert measured["members"] == ["demo.libs/libbig.so"]
    grew = measured["grew"]
    assert isinstance(grew, int)
    assert grew < 1.5 * len(big), f"planning grew by {grew / 2**20:.0f} MiB for a 48 MiB member"
