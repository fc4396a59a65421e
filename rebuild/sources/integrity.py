"""PEP 740 provenance from the index's integrity API: which repository and commit published a file.

The index serves a file's provenance at ``/integrity/<project>/<version>/<filename>/provenance``
(or at the URL its JSON simple API lists for the file). The publish attestation's own predicate
is empty: the facts are in the signing certificate's extensions (Fulcio's OIDs
1.3.6.1.4.1.57264.1.12 source repository URI, .13 source commit, .14 source ref). This module
reads them, after checking that the attestation's subject is this very file (name and sha256).

:func:`fetch_attestation` verifies the provenance first (:mod:`rebuild.attest.pep740`: the
Sigstore signature, offline, against the Trusted Publisher it names) and reads the source only
from a verified certificate; a provenance that fails is returned as such, to be a finding.
:func:`parse_provenance` reads a document without verifying it, for what it claims.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from rebuild.http import borrowed_session
from rebuild.models import DistFile, PublisherAttestation, Target

if TYPE_CHECKING:
    from cryptography import x509

INTEGRITY_JSON = "application/vnd.pypi.integrity.v1+json"
MAX_PROVENANCE_BYTES = 4 * 1024 * 1024
# Fulcio's certificate extensions, dotted: cryptography (0.05 s to import) loads only when a
# provenance is read, and most releases have none.
OID_SOURCE_REPOSITORY_URI = "1.3.6.1.4.1.57264.1.12"
OID_SOURCE_COMMIT = "1.3.6.1.4.1.57264.1.13"
OID_SOURCE_REF = "1.3.6.1.4.1.57264.1.14"
_DER_UTF8STRING = 0x0C


@dataclass(frozen=True)
class Attestation:
    """What one file's provenance says of its source."""

    repository: str  # source repository URI
    commit: str
    ref: str | None  # e.g. "refs/tags/v1.2.3"
    publisher: str  # e.g. "GitHub owner/project release.yml"
    url: str  # where the provenance was read
    # The verification it passed (None: read unverified, by parse_provenance).
    verification: PublisherAttestation | None = None


def integrity_url(index_url: str, target: Target, dist: DistFile) -> str | None:
    """Where the index serves ``dist``'s provenance: the URL it lists, else the integrity path."""
    if dist.provenance_url:
        return dist.provenance_url
    parts = urlsplit(index_url)
    if not parts.path.rstrip("/").endswith("/simple"):
        return None
    base = parts.path.rstrip("/").removesuffix("/simple")
    path = (
        f"{base}/integrity/{quote(str(target.project))}/{quote(target.version)}/"
        f"{quote(dist.filename)}/provenance"
    )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def fetch_attestation(
    url: str,
    dist: DistFile,
    *,
    session: requests.Session | None = None,
    timeout: float = 30,
) -> tuple[Attestation | None, str, PublisherAttestation | None]:
    """The verified attestation of ``dist`` at ``url``, or None with the reason (never raises).

    The third value is the verification, whatever its result: None only when the index served
    no provenance to verify.
    """
    with borrowed_session(session) as s:
        try:
            with s.get(
                url, headers={"Accept": INTEGRITY_JSON}, timeout=timeout, stream=True
            ) as response:
                if response.status_code == 404:
                    return None, f"no PEP 740 provenance for {dist.filename} ({url}: 404)", None
                if response.status_code >= 400:
                    why = f"provenance not available: {url} answered {response.status_code}"
                    return None, why, None
                body = response.raw.read(MAX_PROVENANCE_BYTES + 1, decode_content=True)
        except requests.RequestException as e:
            return None, f"provenance not available: {url}: {e}", None
    if len(body) > MAX_PROVENANCE_BYTES:
        why = f"provenance at {url} is larger than {MAX_PROVENANCE_BYTES} bytes: not verified"
        return None, why, PublisherAttestation(dist.filename, url, verified=False, reason=why)
    from rebuild.attest.pep740 import verify_provenance

    checked = verify_provenance(body, dist.filename, dist.sha256, url)
    if not checked.verified:
        return None, f"PEP 740 provenance of {dist.filename} refused: {checked.reason}", checked
    if checked.repository is None or checked.commit is None:
        why = (
            f"verified PEP 740 provenance of {dist.filename} names no source repository and commit"
        )
        return None, why, checked
    found = Attestation(
        repository=checked.repository,
        commit=checked.commit,
        ref=checked.ref,
        publisher=" ".join(p for p in (checked.publisher, checked.workflow) if p),
        url=url,
        verification=checked,
    )
    return found, checked.reason, checked


def parse_provenance(document: object, dist: DistFile, url: str) -> tuple[Attestation | None, str]:
    """The first attestation in ``document`` whose subject is ``dist``, with source facts."""
    if not isinstance(document, dict) or not isinstance(document.get("attestation_bundles"), list):
        return None, f"provenance at {url} has no attestation_bundles: ignored"
    reasons: list[str] = []
    for bundle in document["attestation_bundles"]:
        if not isinstance(bundle, dict) or not isinstance(bundle.get("attestations"), list):
            continue
        publisher = _publisher(bundle.get("publisher"))
        for attestation in bundle["attestations"]:
            found, reason = _read_attestation(attestation, dist, publisher, url)
            if found is not None:
                return found, "read from a PEP 740 provenance (signature not verified)"
            reasons.append(reason)
    why = "; ".join(sorted(set(reasons))) or "no attestation"
    return None, f"provenance at {url} names no usable source: {why}"


def _publisher(value: object) -> str:
    if not isinstance(value, dict):
        return "unknown publisher"
    fields = (value.get("kind"), value.get("repository"), value.get("workflow"))
    return " ".join(str(f) for f in fields if isinstance(f, str)) or "unknown publisher"


def _read_attestation(
    attestation: object, dist: DistFile, publisher: str, url: str
) -> tuple[Attestation | None, str]:
    if not isinstance(attestation, dict):
        return None, "an attestation is not an object"
    material = attestation.get("verification_material")
    envelope = attestation.get("envelope")
    if not isinstance(material, dict) or not isinstance(envelope, dict):
        return None, "an attestation lacks verification_material or envelope"
    try:
        statement = json.loads(base64.b64decode(str(envelope.get("statement", "")), validate=True))
        der = base64.b64decode(str(material.get("certificate", "")), validate=True)
    except (binascii.Error, ValueError):
        return None, "an attestation's statement or certificate is not valid base64/JSON"
    if not _names_file(statement, dist):
        return None, f"an attestation's subject is not {dist.filename} with its sha256"
    from cryptography import x509

    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return None, "an attestation's certificate is not DER X.509"
    repository = _extension(certificate, OID_SOURCE_REPOSITORY_URI)
    commit = _extension(certificate, OID_SOURCE_COMMIT)
    if repository is None or commit is None:
        return None, "the signing certificate names no source repository and commit"
    return (
        Attestation(
            repository=repository,
            commit=commit.lower(),
            ref=_extension(certificate, OID_SOURCE_REF),
            publisher=publisher,
            url=url,
        ),
        "",
    )


def _names_file(statement: object, dist: DistFile) -> bool:
    if not isinstance(statement, dict) or not isinstance(statement.get("subject"), list):
        return False
    for subject in statement["subject"]:
        if not isinstance(subject, dict):
            continue
        digest = subject.get("digest")
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if subject.get("name") == dist.filename and str(sha256).lower() == dist.sha256.lower():
            return True
    return False


def certificate_text(certificate: x509.Certificate, oid: str) -> str | None:
    """The text of one of Fulcio's extensions of ``certificate`` (None when it has none)."""
    return _extension(certificate, oid)


def _extension(certificate: x509.Certificate, oid: str) -> str | None:
    from cryptography import x509

    try:
        value = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    return _der_utf8(value.value)


def _der_utf8(raw: bytes) -> str | None:
    """A DER UTF8String's text (Fulcio's newer extensions are DER-encoded, older ones raw)."""
    if len(raw) < 2 or raw[0] != _DER_UTF8STRING:
        return raw.decode("utf-8", "replace") or None
    length, offset = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    body = raw[offset : offset + length]
    if len(body) != length:
        return None
    return body.decode("utf-8", "replace") or None
