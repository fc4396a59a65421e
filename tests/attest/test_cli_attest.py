"""`rebuild attest keygen`, `attest verify` and `check --attest --sign-key`, as a user runs them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conftest import ServeRelease
from helpers_cli import run_cli as run
from helpers_index import LocalServer

from rebuild.attest import bundle
from rebuild.attest.keys import Ed25519Signer, load_private
from rebuild.errors import AttestationError, UsageError

from .reports import check_report


def test_keygen_writes_into_the_current_directory_and_never_overwrites(tmp_path: Path) -> None:
    done = run("attest", "keygen", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "rebuild-attest.key").stat().st_mode) == 0o600
    assert "key id      sha256:" in done.stdout
    again = run("attest", "keygen", cwd=tmp_path)
    assert again.returncode == UsageError.exit_code
    assert "refusing to overwrite" in again.stderr
    elsewhere = run("attest", "keygen", "--out", tmp_path / "ci", cwd=tmp_path)
    assert elsewhere.returncode == 0 and (tmp_path / "ci" / "rebuild-attest.pub").is_file()


def test_verify_passes_its_wheel_and_refuses_another_with_exit_13(tmp_path: Path) -> None:
    assert run("attest", "keygen", cwd=tmp_path).returncode == 0
    report, wheel = check_report(tmp_path / "check")
    attestation = tmp_path / "demo.intoto.jsonl"
    bundle.write(report, attestation, Ed25519Signer(load_private(tmp_path / "rebuild-attest.key")))
    key = tmp_path / "rebuild-attest.pub"
    done = run("attest", "verify", attestation, "--key", key, "--wheel", wheel)
    assert done.returncode == 0, done.stderr
    assert "verified: 2 statement(s) about demo-1.0-py3-none-any.whl" in done.stdout
    assert "verdict: divergent" in done.stdout
    other = tmp_path / "other" / wheel.name
    other.parent.mkdir()
    other.write_bytes(wheel.read_bytes()[:-1])
    refused = run("attest", "verify", attestation, "--key", key, "--wheel", other)
    assert refused.returncode == AttestationError.exit_code == 13
    assert "error (attestation): the attestation is about demo-1.0-py3-none-any.whl" in " ".join(
        refused.stderr.split()
    )


def test_sign_key_without_attest_is_a_usage_error(tmp_path: Path) -> None:
    assert run("attest", "keygen", cwd=tmp_path).returncode == 0
    done = run("check", "six==1.16.0", "--sign-key", tmp_path / "rebuild-attest.key")
    assert done.returncode == UsageError.exit_code
    assert "--attest" in done.stderr


@pytest.mark.docker
@pytest.mark.network
def test_check_writes_a_signed_attestation_that_verifies(
    tmp_path: Path, shared_cache: Path
) -> None:
    import json

    from rebuild.attest.keys import load_public

    assert run("attest", "keygen", cwd=tmp_path).returncode == 0
    attestation = tmp_path / "six.intoto.jsonl"
    json_report = tmp_path / "six.json"
    done = run(
        "-q",
        "check",
        "six==1.16.0",
        "--attest",
        attestation,
        "--sign-key",
        tmp_path / "rebuild-attest.key",
        "--json",
        json_report,
        "--cache-dir",
        shared_cache,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    listed = json.loads(json_report.read_text())["release"]["wheel"]
    digest = listed["sha256"]
    wheel = shared_cache / "files" / "sha256" / digest[:2] / digest / listed["filename"]
    verified = bundle.verify(
        attestation.read_text(), load_public(tmp_path / "rebuild-attest.pub"), wheel
    )
    assert verified.subject == "six-1.16.0-py2.py3-none-any.whl"
    assert verified.verdict == "equivalent"


def test_sign_keyless_without_an_identity_fails_before_any_build(tmp_path: Path) -> None:
    attestation = tmp_path / "six.intoto.jsonl"
    done = run("check", "six==1.16.0", "--attest", attestation, "--sign-keyless")
    assert done.returncode == AttestationError.exit_code
    assert "no ambient OIDC identity" in done.stderr
    assert not attestation.exists()
    both = run("check", "six==1.16.0", "--attest", attestation, "--sign-keyless", "--sign-key", "k")
    assert both.returncode == UsageError.exit_code


def test_a_check_that_fails_before_it_knows_its_wheel_keeps_its_exit_code(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    from compare.wheels import make_wheel

    url = local_index[1]("demo", make_wheel(tmp_path / "demo-1.0-py3-none-any.whl"))
    attestation = tmp_path / "demo.intoto.jsonl"
    done = run(
        "check", "demo==7.0", "--index-url", url, "--attest", attestation,
        "--cache-dir", tmp_path / "cache",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # resolve: no such release
    assert "no attestation: nothing to attest" in " ".join(done.stderr.split())
    assert not attestation.exists()
