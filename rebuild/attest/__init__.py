"""Evidence a machine can verify: signed in-toto attestations of a rebuild, and PEP 740 checked.

- :mod:`~rebuild.attest.statement` turns a :class:`~rebuild.models.Report` into in-toto
  Statements (v1): the rebuild as SLSA Provenance v1, the verdict as our own predicate.
- :mod:`~rebuild.attest.dsse` wraps a statement in a DSSE envelope and checks one.
- :mod:`~rebuild.attest.keys` makes and loads the local ed25519 keys that sign them.
- :mod:`~rebuild.attest.bundle` writes and verifies the bundle ``check --attest`` produces.
- :mod:`~rebuild.attest.keyless` signs through Sigstore where the machine has an identity.
- :mod:`~rebuild.attest.pep740` verifies a release's PEP 740 provenance offline, and
  :mod:`~rebuild.attest.findings` turns one that fails into the finding a reviewer sees.
"""
