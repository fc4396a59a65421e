"""Images that build their own CPython (``[interpreter]``): the spec, its tag, the tarball's check.

The CPython compile itself runs where an image is built (bullseye-py311 for the matched cp311
checks); these tests hold what the spec may say, what changes the tag, and that a tarball that
is not the pinned one never reaches an image build.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_index import LocalServer, Reply

from rebuild import images, toolchain
from rebuild.compare.elf_read import read_elf
from rebuild.container import SandboxSpec, run_sandboxed
from rebuild.errors import FetchError, PlanError
from rebuild.images import containers_dir, ensure_image, image_tag, load_spec

OWN = "bullseye-py311"
POOL = "/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz"


def _edit(containers: Path, old: str, new: str) -> None:
    spec = containers / OWN / "image.toml"
    text = spec.read_text(encoding="utf-8")
    assert old in text, old
    spec.write_text(text.replace(old, new), encoding="utf-8")


# The cp311 images that build their own CPython, each with its base's compiler: the releases of
# GCC the manylinux images used (devtoolset-10 until 2024, gcc-toolset-14 since).
OWN_IMAGES = [("bullseye-py311", "3.9", "10.2.1"), ("trixie-py311", "3.13", "14.2.0")]


@pytest.mark.parametrize(("name", "base_python", "gcc"), OWN_IMAGES)
def test_the_cp311_images_build_their_own_cpython_with_the_base_compiler(
    name: str, base_python: str, gcc: str
) -> None:
    spec = load_spec(name)
    base = load_spec(spec.base)
    assert (spec.python, base.python) == ("3.11", base_python)
    assert spec.python_source is not None
    assert spec.python_source.version == "3.11.2"
    assert spec.python_source.configure == ("--disable-shared", "--with-ensurepip=no")
    assert spec.interpreter == "python3.11"
    assert images.dockerfile_of(spec) == images.CPYTHON_TEMPLATE
    assert (containers_dir() / images.CPYTHON_TEMPLATE).is_file()
    # Its compiler is the base's, and the toolchain knows its CPython is its own.
    (compiler,) = toolchain.image_compilers([name]).values()
    assert compiler is not None
    assert compiler.compiler.version == gcc
    assert compiler.own_python == "3.11.2"


def test_every_source_built_image_is_pinned_with_the_interpreter_it_names() -> None:
    built = [load_spec(name) for name in images.spec_names()]
    own = [spec for spec in built if spec.python_source is not None]
    assert {spec.name for spec in own} >= {"bullseye-py311", "trixie-py311"}
    for spec in own:
        assert spec.python_source is not None
        assert spec.python_source.version.startswith(spec.python + ".")
        assert images.read_lock(spec) is not None, spec.name


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('version = "3.11.2"', 'version = "3.11.9"'),
        ('sha256 = "2411', 'sha256 = "3411'),
        ('"--with-ensurepip=no"]', '"--with-ensurepip=no", "--enable-optimizations"]'),
    ],
)
def test_what_decides_the_interpreter_changes_the_tag(containers: Path, old: str, new: str) -> None:
    before = image_tag(load_spec(OWN))
    _edit(containers, old, new)
    assert image_tag(load_spec(OWN)) != before


def test_the_template_changes_the_tag(containers: Path) -> None:
    before = image_tag(load_spec(OWN))
    template = containers / images.CPYTHON_TEMPLATE
    template.write_text(template.read_text() + "RUN true\n")
    assert image_tag(load_spec(OWN)) != before


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # Only an orig tarball from a Debian pool: not an arbitrary host or file.
        (
            'source = "http://deb.debian.org/debian/pool/main/p/python3.11/',
            'source = "http://evil.example/',
            "expected an orig tarball in a Debian mirror's pool",
        ),
        (
            "python3.11_3.11.2.orig.tar.gz",
            "python3.11_3.11.2.orig.tar.gz/../../../x",
            "expected an orig tarball",
        ),
        # A configure option is an option, never a shell word.
        (
            '"--with-ensurepip=no"]',
            '"--with-ensurepip=no", "--prefix=/; rm -rf /"]',
            "field interpreter.configure has",
        ),
        ('"--disable-shared"', '"CFLAGS=-fplugin=/tmp/x.so"', "field interpreter.configure has"),
        ('sha256 = "2411c74b', 'sha256 = "2411C74B', "field interpreter.sha256"),
        ('version = "3.11.2"', 'version = "3.12.1"', "but [interpreter] builds 3.12.1"),
    ],
)
def test_a_bad_interpreter_table_names_the_field(
    containers: Path, old: str, new: str, message: str
) -> None:
    _edit(containers, old, new)
    with pytest.raises(PlanError, match=message.replace("[", r"\[")):
        load_spec(OWN)


def test_without_an_interpreter_the_python_must_be_the_bases(containers: Path) -> None:
    spec = containers / OWN / "image.toml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text[: text.index("[interpreter]")], encoding="utf-8")
    with pytest.raises(PlanError, match=r"the base bullseye-py39 has 3\.9"):
        load_spec(OWN)


@pytest.fixture
def pool() -> Iterator[LocalServer]:
    server = LocalServer()
    server.start()
    yield server
    server.stop()


def _source(pool: LocalServer, body: bytes, sha256: str) -> images.PythonSource:
    pool.route(POOL, Reply(body=body))
    return images.PythonSource(version="3.11.2", url=pool.url(POOL), sha256=sha256, configure=())


def test_the_tarball_is_fetched_once_and_checked(
    pool: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path / "images")
    body = b"a CPython tarball" * 1000
    source = _source(pool, body, hashlib.sha256(body).hexdigest())
    said: list[str] = []
    first = images.fetch_python_source(source, said.append)
    assert first.read_bytes() == body
    assert first.name == "python3.11_3.11.2.orig.tar.gz"
    again = images.fetch_python_source(source, said.append)
    assert again == first
    assert pool.hits(POOL) == 1
    assert [line for line in said if line.startswith("downloading")] == [
        f"downloading {source.url}…"
    ]


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_not_kept(
    pool: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path / "images")
    pinned = hashlib.sha256(b"the real tarball").hexdigest()
    source = _source(pool, b"a tarball with a backdoor", pinned)
    with pytest.raises(FetchError, match="sha256"):
        images.fetch_python_source(source, lambda _: None)
    kept = [p for p in (tmp_path / "images").rglob("*") if p.is_file()]
    assert kept == []


# A tiny extension, built the way setuptools builds one: the interpreter's own sysconfig CC,
# CFLAGS, CCSHARED and LDSHARED, nothing else.
_TINY_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *twice(PyObject *self, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(2 * n);
}
static PyMethodDef methods[] = {{"twice", twice, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "tiny", NULL, -1, methods};
PyMODINIT_FUNC PyInit_tiny(void) { return PyModule_Create(&module); }
"""

_BUILD_TINY = """
set -eu
cd /tmp
cat > tiny.c <<'C'
{source}
C
python3.11 - <<'PY'
import shlex, subprocess, sysconfig
v = sysconfig.get_config_var
print("CFLAGS=" + v("CFLAGS"))
print("LDSHARED=" + v("LDSHARED"))
print("LIBPYTHON=" + str(v("Py_ENABLE_SHARED")))
cc = shlex.split(v("CC")) + shlex.split(v("CFLAGS")) + shlex.split(v("CCSHARED"))
subprocess.run([*cc, "-I" + sysconfig.get_paths()["include"], "-c", "tiny.c", "-o", "tiny.o"],
               check=True)
out = "/out/tiny" + v("EXT_SUFFIX")
subprocess.run([*shlex.split(v("LDSHARED")), "tiny.o", "-o", out], check=True)
PY
cd /out && python3.11 -c 'import tiny; print("twice(21) =", tiny.twice(21))'
"""


@pytest.mark.docker
@pytest.mark.parametrize(
    ("name", "comment"),
    [
        ("bullseye-py311", "GCC: (Debian 10.2.1-6) 10.2.1"),
        ("trixie-py311", "GCC: (Debian 14.2.0-19) 14.2.0"),
    ],
)
def test_a_tiny_extension_gets_cpythons_own_flags_and_the_base_gcc(
    tmp_path: Path, name: str, comment: str
) -> None:
    image = ensure_image(name)
    pinned = load_spec(name).python_source
    assert pinned is not None
    assert image.python_source == f"{pinned.url}#sha256={pinned.sha256}"
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    result = run_sandboxed(
        SandboxSpec(
            image=image.tag,
            command=("/bin/sh", "-c", _BUILD_TINY.format(source=_TINY_C)),
            output_mount=(str(out), "/out"),
            timeout_s=120,
        )
    )
    assert result.exit_code == 0, result.log
    assert "twice(21) = 42" in result.log
    said = ("CFLAGS=", "LDSHARED=", "LIBPYTHON=")
    flags = dict(line.split("=", 1) for line in result.log.splitlines() if line.startswith(said))
    # CPython's own flags, as manylinux's CPython has them; none of what Debian's CPython adds.
    assert "-DNDEBUG -g -fwrapv -O3 -Wall" in flags["CFLAGS"]
    for debian in ("-ffile-prefix-map", "-fstack-protector-strong", "-D_FORTIFY_SOURCE", "-specs"):
        assert debian not in flags["CFLAGS"], debian
    assert "-Wl,-z,relro" not in flags["LDSHARED"]
    assert flags["LIBPYTHON"] == "0"  # a static libpython: extensions link to none
    (built,) = out.glob("tiny.cpython-311-x86_64-linux-gnu.so")
    elf = read_elf(built.read_bytes())
    assert not any(lib.startswith("libpython") for lib in elf.needed)
    assert any(comment in c for c in elf.comment), elf.comment
