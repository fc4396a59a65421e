"""Signed attestations: a key pair, DSSE envelopes, and verification that fails closed.

Tampering with any field of a statement breaks verification (every leaf of both statements is
changed in turn, and also by hypothesis); a statement about another wheel, another key, a
changed payload type, a missing signature and a duplicate JSON key are refused.
"""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebuild.attest import bundle, dsse
from rebuild.attest.keys import (
    PRIVATE_NAME,
    PUBLIC_NAME,
    Ed25519Signer,
    generate,
    load_private,
    load_public,
)
from rebuild.attest.statement import SLSA_PROVENANCE, VERDICT_PREDICATE
from rebuild.errors import AttestationError, UsageError

from .reports import check_report


def test_pae_is_dsse_s_encoding() -> None:
    # The DSSE protocol's own worked example.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "
    # Lengths are bytes, not characters.
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 " + "é".encode()


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    pair = generate(tmp_path / "keys")
    assert pair.private.name == PRIVATE_NAME and pair.public.name == PUBLIC_NAME
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    assert pair.private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_public(pair.public) == load_private(pair.private).public_key()
    before = pair.private.read_bytes()
    with pytest.raises(UsageError, match="refusing to overwrite"):
        generate(tmp_path / "keys")
    assert pair.private.read_bytes() == before


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    pair = generate(tmp_path)
    pair.private.chmod(0o644)
    with pytest.raises(UsageError, match="readable by others"):
        load_private(pair.private)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path, Path]:
    """(bundle text, published wheel, public key, private key) of one signed check."""
    tmp = tmp_path_factory.mktemp("signed")
    report, wheel = check_report(tmp)
    pair = generate(tmp / "keys")
    path = tmp / "demo.intoto.jsonl"
    bundle.write(report, path, Ed25519Signer(load_private(pair.private)))
    return path.read_text(), wheel, pair.public, pair.private


def test_a_signed_bundle_verifies_against_its_wheel(signed: tuple[str, Path, Path, Path]) -> None:
    text, wheel, public, _ = signed
    verified = bundle.verify(text, load_public(public), wheel)
    assert verified.subject == wheel.name
    assert verified.predicate_types == (SLSA_PROVENANCE, VERDICT_PREDICATE)
    assert verified.verdict == "divergent"
    assert len(text.splitlines()) == 2


def test_another_wheel_is_refused(signed: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
    text, wheel, public, _ = signed
    other = tmp_path / wheel.name
    other.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(AttestationError, match="the attestation is about"):
        bundle.verify(text, load_public(public), other)
    renamed = tmp_path / "demo-1.0-py2.py3-none-any.whl"
    renamed.write_bytes(wheel.read_bytes())
    with pytest.raises(AttestationError, match=r"not demo-1\.0-py2\.py3-none-any\.whl"):
        bundle.verify(text, load_public(public), renamed)


def test_another_key_is_refused(signed: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
    text, wheel, _, _ = signed
    stranger = generate(tmp_path)
    with pytest.raises(AttestationError, match="does not verify with the key given"):
        bundle.verify(text, load_public(stranger.public), wheel)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _join(envelopes: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in envelopes)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "x"
    return [*value, "x"] if isinstance(value, list) else {**value, "x": 1}


def _tampered(text: str, line: int, path: tuple[Any, ...]) -> str:
    envelopes = _lines(text)
    statement = json.loads(base64.b64decode(envelopes[line]["payload"]))
    if not path:
        statement = {**statement, "x": 1}
    else:
        holder = statement
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = _changed(holder[path[-1]])
    envelopes[line]["payload"] = base64.b64encode(
        json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    return _join(envelopes)


def test_changing_any_field_of_either_statement_breaks_verification(
    signed: tuple[str, Path, Path, Path],
) -> None:
    text, wheel, public, _ = signed
    key = load_public(public)
    tried = 0
    for line, envelope in enumerate(_lines(text)):
        statement = json.loads(base64.b64decode(envelope["payload"]))
        for path in _leaves(statement):
            with pytest.raises(AttestationError, match="does not verify"):
                bundle.verify(_tampered(text, line, path), key, wheel)
            tried += 1
    assert tried > 40  # every leaf of both statements, not a token few


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_a_payload_breaks_verification(
    signed: tuple[str, Path, Path, Path], data: st.DataObject
) -> None:
    text, wheel, public, _ = signed
    envelopes = _lines(text)
    line = data.draw(st.integers(0, len(envelopes) - 1))
    payload = bytearray(base64.b64decode(envelopes[line]["payload"]))
    where = data.draw(st.integers(0, len(payload) - 1))
    payload[where] ^= data.draw(st.integers(1, 255))
    envelopes[line]["payload"] = base64.b64encode(bytes(payload)).decode()
    with pytest.raises(AttestationError):
        bundle.verify(_join(envelopes), load_public(public), wheel)


def test_the_payload_type_is_signed_too(signed: tuple[str, Path, Path, Path]) -> None:
    text, wheel, public, _ = signed
    envelopes = _lines(text)
    envelopes[0]["payloadType"] = "application/json"
    with pytest.raises(AttestationError, match="not in-toto's"):
        bundle.verify(_join(envelopes), load_public(public), wheel)


def test_an_unsigned_or_truncated_bundle_is_refused(
    signed: tuple[str, Path, Path, Path], tmp_path: Path
) -> None:
    text, wheel, public, _ = signed
    key = load_public(public)
    envelopes = _lines(text)
    envelopes[1]["signatures"] = []
    with pytest.raises(AttestationError, match="no usable signature"):
        bundle.verify(_join(envelopes), key, wheel)
    with pytest.raises(AttestationError, match="no envelope"):
        bundle.verify("", key, wheel)
    # A signature moved from the other statement does not vouch for this one.
    envelopes = _lines(text)
    envelopes[0]["signatures"] = envelopes[1]["signatures"]
    with pytest.raises(AttestationError, match="does not verify"):
        bundle.verify(_join(envelopes), key, wheel)


def test_statements_about_two_wheels_in_one_file_are_refused(
    signed: tuple[str, Path, Path, Path], tmp_path: Path
) -> None:
    text, _, public, private = signed
    report, _ = check_report(tmp_path)
    assert report.comparison is not None
    from dataclasses import replace

    other = replace(
        report,
        comparison=replace(
            report.comparison,
            published=replace(report.comparison.published, filename="other-1.0-py3-none-any.whl"),
        ),
    )
    extra = bundle.render(bundle.envelopes(other, Ed25519Signer(load_private(private))))
    with pytest.raises(AttestationError, match="about different wheels"):
        bundle.verify(text + extra.splitlines(keepends=True)[0], load_public(public))


def test_a_duplicate_key_in_a_signed_payload_is_refused(tmp_path: Path) -> None:
    pair = generate(tmp_path)
    signer = Ed25519Signer(load_private(pair.private))
    payload = (
        b'{"_type":"https://in-toto.io/Statement/v1","predicate":{},"predicateType":"t",'
        b'"subject":[{"digest":{"sha256":"' + b"a" * 64 + b'"},"name":"a.whl"}],'
        b'"subject":[{"digest":{"sha256":"' + b"b" * 64 + b'"},"name":"b.whl"}]}'
    )
    text = json.dumps(dsse.sign(payload, signer).to_json()) + "\n"
    with pytest.raises(AttestationError, match="repeats the key 'subject'"):
        bundle.verify(text, load_public(pair.public))
