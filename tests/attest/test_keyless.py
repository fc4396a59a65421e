"""Keyless signing: against a fake of the Sigstore SDK's two calls, and for real as far as
finding that this machine has no ambient identity."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import sigstore.errors

from rebuild.attest.keyless import SIGSTORE, SigstoreSDK, sign_keyless
from rebuild.attest.statement import canonical, statements
from rebuild.errors import AttestationError

from .reports import WHEEL_NAME, check_report


class FakeSigstore:
    """Records what it is asked to sign and answers with a bundle shaped as Sigstore's."""

    def __init__(self, token: str | None = "eyJ.fake.token") -> None:  # noqa: S107 - a fake
        self.token = token
        self.signed: list[tuple[str, bytes]] = []

    def sdk(self) -> SigstoreSDK:
        return SigstoreSDK(detect=lambda: self.token, sign_dsse=self.sign_dsse)

    def sign_dsse(self, token: str, statement: bytes) -> str:
        self.signed.append((token, statement))
        envelope = {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(b"fake").decode()}],
        }
        bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
        return json.dumps({**bundle, "dsseEnvelope": envelope}, indent=2)


def test_each_statement_is_signed_with_the_ambient_identity(tmp_path: Path) -> None:
    report, _ = check_report(tmp_path)
    fake = FakeSigstore()
    text = sign_keyless(report, fake.sdk())
    assert [token for token, _ in fake.signed] == ["eyJ.fake.token"] * 2
    # Exactly the bytes a key-signed envelope carries: the canonical statements.
    assert [payload for _, payload in fake.signed] == [canonical(s) for s in statements(report)]
    lines = text.splitlines()
    assert len(lines) == 2
    for line in lines:
        bundle = json.loads(line)
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        assert statement["subject"][0]["name"] == WHEEL_NAME


def test_no_identity_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    report, _ = check_report(tmp_path)
    fake = FakeSigstore(token=None)
    with pytest.raises(AttestationError, match="no ambient OIDC identity") as raised:
        sign_keyless(report, fake.sdk())
    assert raised.value.hint is not None and "--sign-key" in raised.value.hint
    assert fake.signed == []


def test_the_sdk_s_errors_become_attestation_errors(tmp_path: Path) -> None:
    report, _ = check_report(tmp_path)

    def refuse(token: str, statement: bytes) -> str:
        raise sigstore.errors.Error("Fulcio said no")

    with pytest.raises(AttestationError, match="Sigstore refused to sign: Fulcio said no"):
        sign_keyless(report, SigstoreSDK(detect=lambda: "t", sign_dsse=refuse))


# Where the real SDK finds an ambient identity: CI systems' variables (GitLab's is named after
# the audience, SIGSTORE_ID_TOKEN).
_AMBIENT = ("GITHUB_ACTIONS", "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE", "CIRCLECI")


def test_without_a_ci_identity_the_real_sdk_finds_none_and_nothing_is_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real SDK's detection, which makes no signature: what an offline builder meets. The
    # variables of a CI identity are taken away, so that a test never signs with a real one.
    for name in [*_AMBIENT, *(n for n in os.environ if n.endswith("_ID_TOKEN"))]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    assert SIGSTORE.detect() is None
    report, _ = check_report(tmp_path)
    with pytest.raises(AttestationError, match="no ambient OIDC identity"):
        sign_keyless(report)
