"""What the loader maps against what the section headers say: hidden bytes are found.

Objects are compiled by the host's gcc, then their section headers are made to lie the way a
hostile object would (a section marked not loaded, a section that no longer covers its bytes),
and patchelf is run on one the way auditwheel runs it, whose leftovers must pass.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from rebuild.compare.elf_read import read_elf
from rebuild.compare.elf_segments import hidden_data, hidden_load

SOURCE = 'int answer(int x) { return x * 42; }\nconst char *word(void) { return "hello"; }\n'


def compile_so(tmp_path: Path) -> bytes:
    source = tmp_path / "demo.c"
    source.write_text(SOURCE)
    out = tmp_path / "demo.so"
    subprocess.run(
        ["gcc", "-O2", "-fPIC", "-shared", str(source), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def _section_header(data: bytes, name: str) -> int:
    """The file offset of the 64-bit section header of ``name``."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    names_at = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 0x18)[0]
    for index in range(shnum):
        header = shoff + index * 64
        at = names_at + struct.unpack_from("<I", data, header)[0]
        if data[at : data.index(b"\0", at)].decode() == name:
            return int(header)
    raise AssertionError(name)


def test_an_honest_object_hides_nothing(tmp_path: Path) -> None:
    assert hidden_load(read_elf(compile_so(tmp_path))) == ()


def test_a_code_section_marked_not_loaded_is_found(tmp_path: Path) -> None:
    data = bytearray(compile_so(tmp_path))
    header = _section_header(bytes(data), ".text")
    struct.pack_into("<Q", data, header + 0x08, 0)  # sh_flags: no SHF_ALLOC, no SHF_EXECINSTR
    found = hidden_load(read_elf(bytes(data)))
    assert any("'.text' is marked not loaded" in f for f in found), found


def test_code_no_section_covers_is_found(tmp_path: Path) -> None:
    data = bytearray(compile_so(tmp_path))
    header = _section_header(bytes(data), ".text")
    struct.pack_into("<Q", data, header + 0x20, 0)  # sh_size: the code is now in no section
    found = hidden_load(read_elf(bytes(data)))
    assert any("in an executable segment, lie in no allocated section" in f for f in found), found


def test_patchelf_s_leftovers_pass_and_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "demo.so"
    path.write_bytes(compile_so(tmp_path))
    # What auditwheel does to a grafted library's users: a longer RPATH moves the dynamic tables.
    long_rpath = "$ORIGIN/../demo.libs:" + "x" * 600
    subprocess.run(["patchelf", "--set-rpath", long_rpath, str(path)], check=True)
    image = read_elf(path.read_bytes())
    assert hidden_load(image) == ()
    assert hidden_data(image), "patchelf left no old copy: the test no longer tests anything"
