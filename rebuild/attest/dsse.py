"""DSSE (Dead Simple Signing Envelope, v1): the envelope every attestation travels in.

The signature covers the pre-authentication encoding (PAE) of the payload type and the payload
bytes, exactly as the DSSE protocol defines it::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

where LEN is the byte length in ASCII decimal without leading zeros and SP one space. So a
payload cannot be replayed under another type, and nothing is re-serialised before it is
checked: what is verified is the received bytes. ``keyid`` is a hint only; it is never trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rebuild.errors import AttestationError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class Signer(Protocol):
    """Anything that signs bytes: a local ed25519 key, a test double."""

    keyid: str

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The envelope in DSSE's JSON form (payload and signatures base64, standard alphabet)."""
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of ``payload`` under ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, signer: Signer, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> Envelope:
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(signer.keyid, signature),))


def from_json(document: object) -> Envelope:
    """An envelope read from its JSON form; anything malformed is an :class:`AttestationError`."""
    if not isinstance(document, dict):
        raise AttestationError("not a DSSE envelope: the document is not a JSON object")
    payload_type = document.get("payloadType")
    raw_signatures = document.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(raw_signatures, list):
        raise AttestationError("not a DSSE envelope: payloadType or signatures missing")
    try:
        payload = base64.b64decode(str(document.get("payload", "")), validate=True)
        signatures = tuple(
            Signature(str(s.get("keyid", "")), base64.b64decode(str(s["sig"]), validate=True))
            for s in raw_signatures
            if isinstance(s, dict)
        )
    except (binascii.Error, KeyError, ValueError) as e:
        raise AttestationError(f"not a DSSE envelope: bad base64 ({e})") from e
    if len(signatures) != len(raw_signatures) or not signatures:
        raise AttestationError(
            "the DSSE envelope has no usable signature",
            hint="an attestation written without --sign-key is unsigned: nothing vouches for it",
        )
    return Envelope(payload_type, payload, signatures)


def verify(envelope: Envelope, check: Callable[[bytes, bytes], bool]) -> bytes:
    """The payload, once one signature of the envelope passes ``check(signature, message)``.

    Every signature is tried whatever its ``keyid`` says (an attacker chooses the hint).
    """
    message = pae(envelope.payload_type, envelope.payload)
    if not any(check(s.sig, message) for s in envelope.signatures):
        raise AttestationError(
            "the DSSE signature does not verify with the key given: the attestation was "
            "altered, or signed with another key",
            hint="verify with the public key of the signer that made it",
        )
    return envelope.payload


def loads_strict(payload: bytes) -> Any:
    """JSON with duplicate keys refused: two parsers must never read two different statements."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                raise AttestationError(f"the statement repeats the key {key!r}")
            found[key] = value
        return found

    try:
        return json.loads(payload, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as e:
        raise AttestationError(f"the signed payload is not JSON: {e}") from e
