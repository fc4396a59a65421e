"""A CycloneDX SBOM of what the published wheel contains, from the verification's point of view.

For the tools security teams feed: the release as the BOM's subject (its PyPI purl), and one
component per compiled member of the wheel: each extension with its sha256, the compiler its own
``.comment`` names (the publisher's word, marked so), and the outcome of the rebuild's
comparison (verified / attributed / unexplained / identical); each library auditwheel grafted
into ``<pkg>.libs/`` with its name, sha256 and, where its file name carries one, its version.
Written with cyclonedx-python-lib (CycloneDX 1.6 JSON) and validated against the schema that
library ships before it is written.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from pathlib import Path

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from rebuild import __version__
from rebuild.archive import ZIP_READ_ERRORS
from rebuild.errors import ArchiveError, RebuildError
from rebuild.models import Report
from rebuild.toolchain import read_objects

_ELF_MAGIC = b"\x7fELF"
# libopenblas64_p-r0-0cf96a72.3.23.dev.so -> 3.23.dev; libgfortran-040039e1.so.5.0.0 -> 5.0.0
_SO_VERSION = re.compile(r"\.so\.(?P<version>\d+(?:\.\d+)*)$")
_PREFIX = "rebuild:"


def write_sbom(report: Report, wheel: Path, path: Path) -> None:
    """The SBOM of ``wheel`` (the published one ``report`` verified), written to ``path``."""
    from rebuild.report import write_atomically

    write_atomically(path, render_sbom(report, wheel))


def render_sbom(report: Report, wheel: Path) -> str:
    if report.target is None:
        raise RebuildError("no release to describe: the check failed before it resolved one")
    bom = Bom()
    root = Component(
        name=report.target.name,
        version=report.target.version,
        type=ComponentType.LIBRARY,
        purl=PackageURL("pypi", None, report.target.project, report.target.version),
        bom_ref=f"release:{report.target}",
        properties=[
            Property(name=f"{_PREFIX}verdict", value=report.verdict.value),
            Property(name=f"{_PREFIX}tool", value=f"rebuild {__version__}"),
        ],
    )
    bom.metadata.component = root
    outcomes = _outcomes(report)
    compilers = {f.member: f for f in read_objects(wheel)}
    members = []
    for name, digest in _compiled_members(wheel):
        grafted = ".libs/" in name
        properties = [
            Property(name=f"{_PREFIX}outcome", value=outcomes.get(name, "identical")),
        ]
        facts = compilers.get(name)
        for comment in facts.comments if facts else ():
            # What the object says of itself: the publisher's word, never evidence.
            properties.append(Property(name=f"{_PREFIX}claimed-compiler", value=comment[:200]))
        version = _SO_VERSION.search(name) if grafted else None
        component = Component(
            name=name,
            version=version["version"] if version else None,
            type=ComponentType.LIBRARY if grafted else ComponentType.FILE,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)],
            bom_ref=f"member:{name}",
            properties=properties,
            description="a library auditwheel grafted into the wheel"
            if grafted
            else "a compiled extension of the wheel",
        )
        bom.components.add(component)
        members.append(component)
    with warnings.catch_warnings():
        # The graph is complete: the release contains every member; nothing depends further.
        warnings.simplefilter("ignore", UserWarning)
        bom.register_dependency(root, members)
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    problem = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if problem is not None:
        raise RebuildError(f"the SBOM does not validate against CycloneDX 1.6: {problem}")
    return text + "\n"


def _outcomes(report: Report) -> dict[str, str]:
    found: dict[str, str] = {}
    for divergence in report.comparison.divergences if report.comparison else ():
        if divergence.member and divergence.kind.value == "content":
            found[divergence.member] = divergence.outcome.value
    return found


def _compiled_members(wheel: Path) -> list[tuple[str, str]]:
    """(name, sha256) of each ELF member, hashed as a stream."""
    found = []
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.filename.endswith("/"):
                    continue
                with archive.open(info) as member:
                    head = member.read(4)
                    if head != _ELF_MAGIC:
                        continue
                    digest = hashlib.sha256(head)
                    while chunk := member.read(1 << 20):
                        digest.update(chunk)
                found.append((info.filename, digest.hexdigest()))
    except ZIP_READ_ERRORS as e:
        raise ArchiveError(f"{wheel.name} cannot be read as a zip: {e}") from e
    return found
