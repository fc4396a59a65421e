"""PEP 740 provenance verified offline, against the Trusted Publisher it names.

The index's provenance of a file holds attestation bundles, each naming its Trusted Publisher
(GitHub, GitLab, Google, CircleCI: repository and workflow) and holding Sigstore-signed in-toto
statements about the file. Each one is verified with the maintained library
(``pypi_attestations.Attestation.verify(publisher, dist, offline=True)``): the Sigstore
certificate chain and transparency-log entry against sigstore-python's trust root as it is on
this machine (embedded in the package, or a copy cached earlier) with no refresh over the
network; the certificate's identity against the publisher; the statement's subject against the
file's name and sha256. Only then are the certificate's source repository, commit and ref read.

Fail closed: a provenance that does not parse, names no publisher, holds no attestation, or
holds one attestation that does not verify, is not verified, with the library's reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from rebuild.errors import AttestationError
from rebuild.models import PublisherAttestation
from rebuild.sources.integrity import (
    OID_SOURCE_COMMIT,
    OID_SOURCE_REF,
    OID_SOURCE_REPOSITORY_URI,
    certificate_text,
)

if TYPE_CHECKING:
    from pypi_attestations import Publisher

# Fulcio: Build Config URI, e.g. https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1
OID_BUILD_CONFIG_URI = "1.3.6.1.4.1.57264.1.18"
# The production instance's TUF repository: the name of its embedded and cached trust root.
SIGSTORE_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"


def verify_provenance(body: bytes, filename: str, sha256: str, url: str) -> PublisherAttestation:
    """``body`` (a PEP 740 provenance document) verified for the file ``filename``/``sha256``.

    Never raises for a provenance that fails: the result says ``verified=False`` and why.
    """
    # sigstore loads only when there is provenance to verify (most checks have none).
    import pydantic
    import sigstore.errors
    from pypi_attestations import AttestationError as LibraryError
    from pypi_attestations import Distribution, Provenance

    def failed(reason: str) -> PublisherAttestation:
        return PublisherAttestation(file=filename, url=url, verified=False, reason=reason)

    try:
        provenance = Provenance.model_validate_json(body)
        dist = Distribution(name=filename, digest=sha256.lower())
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        return failed(f"not a PEP 740 provenance of {filename}: {where}: {first['msg']}")
    except ValueError as e:
        return failed(f"not a PEP 740 provenance of {filename}: {_first_line(e)}")
    if not provenance.attestation_bundles:
        return failed("the provenance holds no attestation bundle")
    found: PublisherAttestation | None = None
    for bundle in provenance.attestation_bundles:
        publisher = bundle.publisher
        if not bundle.attestations:
            return failed(f"the bundle of {_describe(publisher)} holds no attestation")
        for attestation in bundle.attestations:
            try:
                attestation.verify(publisher, dist, offline=True)
            except (LibraryError, sigstore.errors.Error) as e:
                # sigstore's own errors: a trust root that cannot be loaded offline, say.
                return failed(
                    f"an attestation of {filename} by {_describe(publisher)} does not verify: "
                    f"{_first_line(e)}"
                )
            certificate = x509.load_der_x509_certificate(
                attestation.verification_material.certificate
            )
            facts = PublisherAttestation(
                file=filename,
                url=url,
                verified=True,
                reason=f"verified offline against the Trusted Publisher {_describe(publisher)}, "
                f"with {trust_root()}",
                publisher=publisher.kind,
                repository=certificate_text(certificate, OID_SOURCE_REPOSITORY_URI),
                workflow=_workflow(certificate, publisher),
                commit=(certificate_text(certificate, OID_SOURCE_COMMIT) or "").lower() or None,
                ref=certificate_text(certificate, OID_SOURCE_REF),
            )
            if found is not None and (found.repository, found.commit) != (
                facts.repository,
                facts.commit,
            ):
                return failed("the attestations of the file name different sources")
            found = found or facts
    return found or failed("the provenance holds no attestation")


def trust_root() -> str:
    """Which Sigstore trust root an offline verification uses, in words for the report.

    Offline, sigstore-python reads the trusted root from its cache directory, where it copies
    the root embedded in the package when the cache has none; an earlier online refresh may
    have left a newer one there. Said, so a reader knows what the verification rested on.
    """
    from importlib import metadata, resources
    from urllib.parse import quote

    import platformdirs

    name = quote(SIGSTORE_TUF_URL, safe="")
    embedded = resources.files("sigstore._store").joinpath(name, "trusted_root.json")
    cached = (
        Path(platformdirs.user_cache_dir("sigstore-python", "sigstore"))
        / "tuf"
        / name
        / "trusted_root.json"
    )
    version = metadata.version("sigstore")
    try:
        same = not cached.exists() or cached.read_bytes() == embedded.read_bytes()
    except OSError:
        same = False
    if same:
        return f"the trust root embedded in sigstore {version}"
    return f"the trust root cached at {cached} by an earlier refresh (not sigstore {version}'s own)"


def require_verified(body: bytes, filename: str, sha256: str, url: str) -> PublisherAttestation:
    """As :func:`verify_provenance`, but a provenance that fails is an :class:`AttestationError`."""
    checked = verify_provenance(body, filename, sha256, url)
    if not checked.verified:
        raise AttestationError(
            f"the PEP 740 provenance of {filename} failed verification: {checked.reason}",
            hint="the file, or its provenance, is not what its Trusted Publisher published",
        )
    return checked


def _describe(publisher: Publisher) -> str:
    fields: list[str] = [publisher.kind]
    for name in ("repository", "workflow", "workflow_filepath", "environment", "email"):
        value = getattr(publisher, name, None)
        if isinstance(value, str) and value:
            fields.append(value)
    return " ".join(fields)


def _workflow(certificate: x509.Certificate, publisher: Publisher) -> str | None:
    """The workflow the certificate names (its Build Config URI, the path before ``@``)."""
    config = certificate_text(certificate, OID_BUILD_CONFIG_URI)
    if config:
        return config.split("@", 1)[0]
    value = getattr(publisher, "workflow", None) or getattr(publisher, "workflow_filepath", None)
    return value if isinstance(value, str) else None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
