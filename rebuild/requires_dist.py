"""Requirement strings: how a tool spelled a ``Requires-Dist`` value, and the projects they name.

One spelling names its writer: ``botocore (<1.45.0,>=1.44.8)``, the version specifiers in
parentheses, is how wheel 0.41.0 and older wrote a requirement into METADATA; wheel 0.41.1 to
0.43 and setuptools' own writer put a space instead (``botocore <1.45.0,>=1.44.8``), wheel 0.44
and later nothing. Measured with setuptools 75.1.0, whose ``bdist_wheel`` uses the installed
wheel's writer when there is one. The plan reads it as evidence of the publisher's wheel
version; the compare stage reads it to name the likely cause of a respelled requirement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

# "name (spec)" or "name[extra] (spec)".
PARENTHESISED = re.compile(r"^[A-Za-z0-9._-]+\s*(\[[^\]]*\])?\s*\(")

# The wheel releases that write it.
PARENTHESISING_WHEEL = "wheel<0.41.1"


def requirement_names(requirements: Iterable[str]) -> set[NormalizedName]:
    """The normalised project names of PEP 508 requirement strings (each must parse)."""
    return {canonicalize_name(Requirement(text).name) for text in requirements}
