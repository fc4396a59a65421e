"""The attestation file ``check --attest`` writes and ``attest verify`` checks.

An in-toto bundle: JSON Lines, one DSSE envelope a line, here the rebuild's provenance then its
verdict, both about the same published wheel. Verification fails closed: every envelope must be
signed by the key given, hold an in-toto Statement v1 about exactly one subject, all about the
same one, and (with a wheel file) that subject must be that file, by name and sha256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rebuild.attest import dsse
from rebuild.attest.keys import keyid, verify_signature
from rebuild.attest.statement import (
    STATEMENT_TYPE,
    VERDICT_PREDICATE,
    canonical,
    statements,
)
from rebuild.errors import AttestationError, UsageError
from rebuild.fetch import sha256_file
from rebuild.models import Report

MAX_BUNDLE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Verified:
    """What a verified bundle attests, and by which key."""

    subject: str  # the wheel's file name
    sha256: str
    predicate_types: tuple[str, ...]
    verdict: str | None  # from the verdict predicate, when the bundle has one
    keyid: str


def envelopes(report: Report, signer: dsse.Signer | None) -> tuple[dsse.Envelope, ...]:
    """The report's statements, each in an envelope (unsigned without a signer)."""
    found = []
    for statement in statements(report):
        payload = canonical(statement)
        if signer is None:
            found.append(dsse.Envelope(dsse.IN_TOTO_PAYLOAD_TYPE, payload, ()))
        else:
            found.append(dsse.sign(payload, signer))
    return tuple(found)


def render(items: tuple[dsse.Envelope, ...]) -> str:
    return "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in items)


def write(report: Report, path: Path, signer: dsse.Signer | None) -> None:
    from rebuild.report import write_atomically

    write_atomically(path, render(envelopes(report, signer)))


def read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read the attestation {path}: {e.strerror}") from e
    if len(data) > MAX_BUNDLE_BYTES:
        raise AttestationError(f"{path} is larger than {MAX_BUNDLE_BYTES} bytes: not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AttestationError(f"{path} is not UTF-8 text: not an attestation bundle") from e


def verify(text: str, public: Ed25519PublicKey, wheel: Path | None = None) -> Verified:
    """The bundle's claims, once every envelope verifies (see the module's docstring)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise AttestationError("the attestation file holds no envelope")
    subjects: set[tuple[str, str]] = set()
    types: list[str] = []
    verdict: str | None = None
    for number, line in enumerate(lines, 1):
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise AttestationError(f"line {number} is not JSON: {e}") from e
        envelope = dsse.from_json(document)
        if envelope.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
            raise AttestationError(
                f"line {number}: payload type {envelope.payload_type!r} is not in-toto's"
            )
        payload = dsse.verify(envelope, lambda sig, msg: verify_signature(public, sig, msg))
        statement = dsse.loads_strict(payload)
        name, sha256, kind = _read_statement(statement, number)
        subjects.add((name, sha256))
        types.append(kind)
        if kind == VERDICT_PREDICATE:
            value = statement["predicate"].get("verdict")
            verdict = value if isinstance(value, str) else None
    if len(subjects) != 1:
        raise AttestationError(
            "the envelopes of the file are about different wheels: "
            + ", ".join(sorted(n for n, _ in subjects))
        )
    ((name, sha256),) = subjects
    if wheel is not None:
        _check_wheel(wheel, name, sha256)
    return Verified(name, sha256, tuple(types), verdict, keyid(public))


def _read_statement(statement: object, number: int) -> tuple[str, str, str]:
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"line {number}: the payload is not an in-toto Statement v1")
    kind = statement.get("predicateType")
    subject = statement.get("subject")
    if not isinstance(kind, str) or not isinstance(statement.get("predicate"), dict):
        raise AttestationError(f"line {number}: the statement has no predicate")
    if not isinstance(subject, list) or len(subject) != 1 or not isinstance(subject[0], dict):
        raise AttestationError(f"line {number}: the statement must name exactly one subject")
    name, digest = subject[0].get("name"), subject[0].get("digest")
    sha256 = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(name, str) or not isinstance(sha256, str) or len(sha256) != 64:
        raise AttestationError(f"line {number}: the subject has no name and sha256")
    return name, sha256.lower(), kind


def _check_wheel(wheel: Path, name: str, sha256: str) -> None:
    try:
        actual = sha256_file(wheel)
    except OSError as e:
        raise UsageError(f"cannot read the wheel {wheel}: {e.strerror}") from e
    if wheel.name != name or actual != sha256:
        raise AttestationError(
            f"the attestation is about {name} (sha256 {sha256}), not {wheel.name} "
            f"(sha256 {actual})",
            hint="verify it against the wheel it was made for",
        )
