"""The CycloneDX SBOM of a checked wheel: its compiled members, their hashes, what they claim and
what the rebuild found, validated against CycloneDX 1.6 (by cyclonedx-python-lib's own schema)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from compare.wheels import make_wheel

from rebuild.compare import compare_wheels
from rebuild.models import Report, Target
from rebuild.report.sbom import render_sbom

EXTENSION = "demo/_ext.cpython-311-x86_64-linux-gnu.so"
GRAFTED = "demo.libs/libfoo-0a1b2c3d.so.1.2.3"


def _shared_object(tmp_path: Path, source: str, name: str) -> bytes:
    gcc = shutil.which("gcc")
    assert gcc is not None, "gcc is part of this machine's toolchain"
    c_file = tmp_path / f"{name}.c"
    c_file.write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", str(c_file), "-o", str(out)], check=True)
    return out.read_bytes()


def test_the_sbom_names_each_compiled_member_its_hash_claim_and_outcome(tmp_path: Path) -> None:
    extension = _shared_object(tmp_path, "int f(int x) { return x + 1; }\n", "ext")
    changed = _shared_object(tmp_path, "int f(int x) { return x + 2; }\n", "changed")
    library = _shared_object(tmp_path, "int g(void) { return 7; }\n", "lib")
    published = make_wheel(
        tmp_path / "p" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        changes={EXTENSION: extension, GRAFTED: library},
    )
    rebuilt = make_wheel(
        tmp_path / "r" / "demo-1.0-cp311-cp311-linux_x86_64.whl",
        changes={EXTENSION: changed, GRAFTED: library},
    )
    comparison = compare_wheels(published, rebuilt)
    report = Report(
        tool_version="test",
        created=datetime.now(UTC),
        verdict=comparison.verdict,
        target=Target.parse("demo==1.0"),
        comparison=comparison,
    )
    document = json.loads(render_sbom(report, published))
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["purl"] == "pkg:pypi/demo@1.0"
    by_name = {c["name"]: c for c in document["components"]}
    assert set(by_name) == {EXTENSION, GRAFTED}
    ext = by_name[EXTENSION]
    assert ext["type"] == "file"
    assert ext["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(extension).hexdigest()}]
    props = {p["name"]: p["value"] for p in ext["properties"]}
    assert props["rebuild:outcome"] == "unexplained"
    assert props["rebuild:claimed-compiler"].startswith("GCC: (Debian")
    lib = by_name[GRAFTED]
    assert lib["type"] == "library" and lib["version"] == "1.2.3"
    assert {p["name"]: p["value"] for p in lib["properties"]}["rebuild:outcome"] == "identical"


@pytest.mark.docker
@pytest.mark.network
def test_a_real_check_s_sbom(markupsafe_check: Report, shared_cache: Path) -> None:
    from conftest import published_wheel

    document = json.loads(
        render_sbom(markupsafe_check, published_wheel(shared_cache, markupsafe_check))
    )
    (component,) = document["components"]
    assert component["name"] == "markupsafe/_speedups.cpython-311-x86_64-linux-gnu.so"
    props = {p["name"]: p["value"] for p in component["properties"]}
    assert props["rebuild:outcome"] == "attributed"  # the fixture rebuilds with GCC 12 on purpose
    assert "Red Hat 10.2.1" in props["rebuild:claimed-compiler"]


@pytest.mark.docker
@pytest.mark.network
def test_check_writes_the_sbom_it_is_asked_for(tmp_path: Path, shared_cache: Path) -> None:
    import sys

    sbom = tmp_path / "six.cdx.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rebuild",
            "-q",
            "check",
            "six==1.16.0",
            "--cyclonedx",
            str(sbom),
            "--cache-dir",
            str(shared_cache),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    document = json.loads(sbom.read_text())
    assert document["metadata"]["component"]["purl"] == "pkg:pypi/six@1.16.0"
    assert document.get("components", []) == []  # a pure wheel: nothing compiled to list
