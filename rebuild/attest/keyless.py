"""Keyless signing through Sigstore, where the machine has an ambient identity.

In CI that has one (GitHub Actions with ``id-token: write``, GitLab CI, Google Cloud, Buildkite,
CircleCI...), sigstore-python detects the OIDC token, Fulcio issues a short-lived certificate
for that identity, each statement is signed as a DSSE envelope and logged in Rekor, and the
result is one Sigstore bundle per statement (JSON Lines, as the key-signed file). No key is
kept anywhere; whoever verifies names the identity they trust instead of a public key, e.g.
with sigstore-python's ``Verifier.production().verify_dsse(bundle, policy.Identity(...))``.

This needs the network (Fulcio, Rekor, the TUF repository) and an identity: neither exists on
an offline builder, where :func:`sign_keyless` refuses with the reason. It is tested against a
fake at the SDK boundary (:class:`SigstoreSDK` is that boundary) and for real only as far as
detecting that there is no identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rebuild.attest.statement import canonical, statements
from rebuild.errors import AttestationError
from rebuild.models import Report


@dataclass(frozen=True)
class SigstoreSDK:
    """The two calls rebuild makes into sigstore-python: find the ambient identity token, and
    sign one in-toto statement's bytes with it, returning the Sigstore bundle's JSON."""

    detect: Callable[[], str | None]
    sign_dsse: Callable[[str, bytes], str]


def _detect() -> str | None:
    import sigstore.oidc

    return sigstore.oidc.detect_credential()


def _sign_dsse(token: str, statement: bytes) -> str:
    from sigstore import dsse
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    context = SigningContext.from_trust_config(ClientTrustConfig.production())
    with context.signer(IdentityToken(token), cache=True) as signer:
        return signer.sign_dsse(dsse.Statement(statement)).to_json()


SIGSTORE = SigstoreSDK(detect=_detect, sign_dsse=_sign_dsse)


def require_identity(sdk: SigstoreSDK = SIGSTORE) -> str:
    """The ambient identity token, or an :class:`AttestationError` saying there is none (asked
    before a build, so that a check does not run for minutes to fail at its end)."""
    import sigstore.errors

    try:
        token = sdk.detect()
    except sigstore.errors.Error as e:
        raise AttestationError(
            f"the ambient identity could not be read: {e}",
            hint="sign with a local key instead: rebuild attest keygen, then --sign-key",
        ) from e
    if not token:
        raise AttestationError(
            "no ambient OIDC identity on this machine: keyless signing needs one (GitHub "
            "Actions with id-token: write, GitLab CI, Google Cloud...)",
            hint="sign with a local key instead: rebuild attest keygen, then --sign-key",
        )
    return token


def sign_keyless(report: Report, sdk: SigstoreSDK = SIGSTORE) -> str:
    """The report's statements, each signed through Sigstore: one bundle's JSON a line."""
    import sigstore.errors

    token = require_identity(sdk)
    lines = []
    for statement in statements(report):
        try:
            bundle = sdk.sign_dsse(token, canonical(statement))
        except sigstore.errors.Error as e:
            raise AttestationError(
                f"Sigstore refused to sign: {e}",
                hint="keyless signing needs Fulcio and Rekor reachable, and a valid identity",
            ) from e
        # One bundle a line: the JSON the SDK writes may be indented.
        lines.append(json.dumps(json.loads(bundle), separators=(",", ":"), sort_keys=True))
    return "".join(line + "\n" for line in lines)


def write_keyless(report: Report, path: Path, sdk: SigstoreSDK = SIGSTORE) -> None:
    from rebuild.report import write_atomically

    write_atomically(path, sign_keyless(report, sdk))
