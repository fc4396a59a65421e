"""The local ed25519 key pair that signs attestations: made once, loaded for every signature.

Keys are PEM files (PKCS#8 private key, SubjectPublicKeyInfo public key), which OpenSSL, cosign
and in-toto's tooling all read. The private key is created with mode 0600 from the start
(``O_EXCL``), never written over an existing file, and refused when others can read it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rebuild.errors import UsageError

PRIVATE_NAME = "rebuild-attest.key"
PUBLIC_NAME = "rebuild-attest.pub"


@dataclass(frozen=True)
class KeyPair:
    """Where ``rebuild attest keygen`` wrote the two halves, and the key id both share."""

    private: Path
    public: Path
    keyid: str


def keyid(public: Ed25519PublicKey) -> str:
    """``sha256:`` of the public key's DER encoding: a hint in the envelope, never trusted."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def generate(directory: Path) -> KeyPair:
    """A new key pair in ``directory``; refuses to replace either file."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise UsageError(
                f"{path} exists: refusing to overwrite a key",
                hint="move it away first, or write the new pair elsewhere: --out DIR",
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL: a file that appeared since the check above is not replaced; 0600 from creation,
    # so the private key is never readable by others, not even for an instant.
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return KeyPair(private=private_path, public=public_path, keyid=keyid(key.public_key()))


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError as e:
        raise UsageError(f"{path} exists: refusing to overwrite a key") from e
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # the umask may have taken bits the mode asked for (0644)
        f.write(data)


def load_private(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``: an unencrypted ed25519 PEM that only its owner can read."""
    data = _read(path)
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"{path} is readable by others (mode {stat.S_IMODE(path.stat().st_mode):04o})",
            hint=f"chmod 600 {path}",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not an unencrypted PEM private key: {e}",
            hint="make one with `rebuild attest keygen`",
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an ed25519 key", hint="rebuild signs with ed25519 only")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """The verification key at ``path`` (PEM SubjectPublicKeyInfo, ed25519)."""
    try:
        key = serialization.load_pem_public_key(_read(path))
    except (ValueError, TypeError) as e:
        raise UsageError(
            f"{path} is not a PEM public key: {e}",
            hint=f"pass the {PUBLIC_NAME} that `rebuild attest keygen` wrote",
        ) from e
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an ed25519 public key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the key {path}: {e.strerror}") from e


class Ed25519Signer:
    """Signs DSSE's pre-authentication encoding with a local key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.keyid = keyid(key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``public``'s over ``message`` (no exception to leak past)."""
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


__all__ = [
    "PRIVATE_NAME",
    "PUBLIC_NAME",
    "Ed25519Signer",
    "KeyPair",
    "generate",
    "keyid",
    "load_private",
    "load_public",
    "verify_signature",
]
