"""Synthetic C extensions compiled by the build image's own gcc, for the ELF analyser's tests.

One sandboxed run (no network, read-only source, one writable output directory) compiles every
variant a test needs, each in the build directory it names, so that the variants differ only in
what the test changed.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rebuild.container import SandboxSpec, run_sandboxed

# A dozen functions calling each other; GROW and EXTRA are the hooks the variants fill.
SOURCE = """\
#include <Python.h>
#define F static __attribute__((noipa))
F long f01(long x) { return x * 3 + 1; }
F long f02(long x) { return f01(x) ^ (x >> 2); }
F long f03(long x) { return f02(x) + f01(x + 7); }
F long f04(long x) { return f03(x) - (x << 1); }
F long f05(long x) { GROW return f04(x) * 11 + f02(x); }
F long f06(long x) { return f05(x) | f03(x ^ 5); }
F long f07(long x) { return f06(x) + f04(x - 3); }
F long f08(long x) { return f07(x) ^ f05(x + 1); }
F long f09(long x) { return f08(x) - f06(x * 2); }
F long f10(long x) { return f09(x) + f07(x >> 1); }
F long f11(long x) { return f10(x) * 5 - f08(x); }
F long f12(long x) { return f11(x) ^ f09(x + 13); }
EXTRA
static PyObject *run(PyObject *self, PyObject *arg) {
    return PyLong_FromLong(f12(PyLong_AsLong(arg)));
}
static PyMethodDef methods[] = {{"run", run, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "demo", NULL, -1, methods};
PyMODINIT_FUNC PyInit_demo(void) { return PyModule_Create(&module); }
"""
GROWN = "for (int i = 0; i < (int)(x & 7); i++) x = x * 5 + i;"
BACKDOOR = "long demo_backdoor(long x) { return f03(x) + 42; }"


@dataclass(frozen=True)
class Variant:
    name: str  # the output file is <name>.so
    build_dir: str  # where the compiler runs, inside the sandbox
    grow: str = ""
    extra: str = ""

    def source(self) -> str:
        return SOURCE.replace("GROW", self.grow).replace("EXTRA", self.extra)


def compile_variants(image: str, variants: list[Variant], workdir: Path) -> dict[str, Path]:
    """Compile each variant with ``gcc -O2 -g -shared`` in the sandbox; return name -> .so."""
    sources = workdir / "src"
    out = workdir / "out"
    sources.mkdir(parents=True)
    out.mkdir()
    out.chmod(0o777)
    lines = ["set -eu"]
    for variant in variants:
        (sources / f"{variant.name}.c").write_text(variant.source(), encoding="utf-8")
        build = shlex.quote(variant.build_dir)
        lines += [
            f"rm -rf {build} && mkdir -p {build} && cd {build}",
            f"cp /inputs/src/{variant.name}.c demo.c",
            f"gcc -O2 -g -fPIC -shared -I/usr/include/python3.11 demo.c -o /out/{variant.name}.so",
        ]
    result = run_sandboxed(
        SandboxSpec(
            image=image,
            command=("/bin/sh", "-c", "\n".join(lines)),
            read_only_mounts={str(sources): "/inputs/src"},
            output_mount=(str(out), "/out"),
            timeout_s=300,
        )
    )
    assert result.exit_code == 0, result.log
    return {v.name: out / f"{v.name}.so" for v in variants}


def host_shared_object(
    directory: Path, name: str, source: str, flags: tuple[str, ...] = ("-O1",)
) -> bytes:
    """``source`` compiled by the host's gcc into a shared object (no sandbox: for unit tests
    that need a real object quickly, not a reproducible one)."""
    (directory / f"{name}.c").write_text(source, encoding="utf-8")
    out = directory / f"{name}.so"
    subprocess.run(
        ["gcc", *flags, "-fPIC", "-shared", str(directory / f"{name}.c"), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()
