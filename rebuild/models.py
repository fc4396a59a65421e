"""The frozen data passed from one stage of the pipeline to the next.

Each stage takes one of these and returns another; none holds behaviour beyond small derived
properties. Closed sets are Enums so that the renderers can match them exhaustively.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from rebuild.errors import EXIT_DIVERGENT, EXIT_REPRODUCIBLE, UsageError

_TARGET = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(?P<version>[^\s=;]+)\s*$")


@dataclass(frozen=True)
class Target:
    """One release of one project, as the user named it: ``numpy==1.26.4``."""

    name: str
    version: str

    @property
    def project(self) -> NormalizedName:
        return canonicalize_name(self.name)

    @classmethod
    def parse(cls, spec: str) -> Target:
        match = _TARGET.match(spec)
        if match is None:
            raise UsageError(
                f"{spec!r} is not NAME==VERSION",
                hint="name one exact release, e.g. `numpy==1.26.4`",
            )
        version = match["version"]
        try:
            Version(version)
        except InvalidVersion as e:
            raise UsageError(f"{version!r} is not a valid version (PEP 440)") from e
        return cls(name=match["name"], version=version)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


class DistKind(enum.Enum):
    WHEEL = "wheel"
    SDIST = "sdist"


@dataclass(frozen=True)
class DistFile:
    """One file of a release as the index lists it (PEP 691 JSON)."""

    filename: str
    url: str
    sha256: str
    kind: DistKind
    size: int | None = None
    upload_time: datetime | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    requires_python: str | None = None
    # PEP 658/714: the index serves the wheel's METADATA alone at `url + ".metadata"`.
    metadata_sha256: str | None = None
    # PEP 740: where the index serves this file's provenance, when it lists one.
    provenance_url: str | None = None


@dataclass(frozen=True)
class WheelSelector:
    """Which wheel of a release to verify; ``None`` means "like this interpreter"."""

    python: str | None = None  # "3.11"
    platform: str | None = None  # "manylinux_2_17_x86_64"
    filename: str | None = None  # exactly this wheel file of the release (a wheel the user holds)


@dataclass(frozen=True)
class Release:
    """What the index says of one release, and the files chosen for the rebuild."""

    target: Target
    index_url: str
    selector: WheelSelector
    files: tuple[DistFile, ...]
    wheel: DistFile | None
    sdist: DistFile | None
    # (label, url) pairs from the chosen wheel's core metadata (Project-URL, Home-page).
    project_urls: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Artifact:
    """A file on disk whose sha256 has been checked (in the cache, or given by the user)."""

    path: Path
    sha256: str
    size: int
    origin: str  # the URL it was downloaded from, or "local file"


# --- comparison ----------------------------------------------------------------------------


class Verdict(enum.Enum):
    """Ordered strongest first (see DESIGN.md)."""

    REPRODUCIBLE = "reproducible"
    EQUIVALENT = "equivalent"
    DIVERGENT = "divergent"
    FAILED = "failed"

    @property
    def exit_code(self) -> int:
        if self in (Verdict.REPRODUCIBLE, Verdict.EQUIVALENT):
            return EXIT_REPRODUCIBLE
        if self is Verdict.DIVERGENT:
            return EXIT_DIVERGENT
        # A failed verdict carries its failure's own exit code; see Failure.
        return 10


class Layer(enum.Enum):
    """Where a difference lives, which decides what it does to the verdict."""

    # The zip container only: never changes a member's bytes (equivalent at worst).
    CONTAINER = "container"
    # A member's bytes, or a member on one side only (divergent).
    MEMBER = "member"
    # A wheel disagrees with itself (its RECORD lies, unsafe or duplicate names).
    INTEGRITY = "integrity"
    # A published file against the source it should come from, without a build (wheel vs sdist,
    # sdist vs the tagged commit).
    SOURCE = "source"


class DivergenceKind(enum.Enum):
    # container layer
    ENTRY_ORDER = "entry-order"
    TIMESTAMP = "timestamp"
    COMPRESSION = "compression"
    PERMISSIONS = "permissions"
    ATTRIBUTES = "attributes"  # create system/version, flags, internal attributes
    ZIP_COMMENT = "zip-comment"
    ENTRY_COMMENT = "entry-comment"
    EXTRA_FIELD = "extra-field"
    DIRECTORY_ENTRY = "directory-entry"  # an empty `name/` entry on one side only
    # member layer
    ONLY_PUBLISHED = "only-published"
    ONLY_REBUILT = "only-rebuilt"
    CONTENT = "content"  # bytes differ; detail holds a diff or the analyser's findings
    METADATA_FIELD = "metadata-field"  # one field of METADATA / WHEEL / entry points
    RECORD_ENTRY = "record-entry"  # one row of RECORD differs
    # The entry's mode makes pip and installer install the file executable on one side only.
    INSTALLED_MODE = "installed-mode"
    # A file pip or installer installs differs, at a path the pairing by stored name misses
    # (rebuild.compare.installed).
    INSTALLED_FILE = "installed-file"
    # A file that runs without being imported (.pth, sitecustomize, a script, an entry point)
    # that the rebuild does not have identically: never explained (rebuild.compare.autorun).
    RUNS_ON_ITS_OWN = "runs-on-its-own"
    # integrity layer (a finding about one wheel on its own)
    RECORD_MISMATCH = "record-mismatch"
    DUPLICATE_NAME = "duplicate-name"
    UNSAFE_NAME = "unsafe-name"
    SYMLINK = "symlink"
    HEADER_MISMATCH = "header-mismatch"  # local header and central directory disagree
    UNLISTED_DATA = "unlisted-data"  # bytes of the file no entry lists (prepended, in gaps)
    INSTALL_DEPENDS = "install-depends"  # what it installs depends on the interpreter/installer
    PATH_COLLISION = "path-collision"  # installed paths that land on one file
    # source layer (a published file against its source, no build)
    NOT_IN_SDIST = "not-in-sdist"  # a Python file of the wheel with no counterpart in the sdist
    DIFFERS_FROM_SDIST = "differs-from-sdist"  # ... whose bytes are not its counterpart's
    NOT_IN_GIT = "not-in-git"  # a file of the sdist absent from the tree at the tag
    DIFFERS_FROM_GIT = "differs-from-git"  # ... whose bytes are not the tagged tree's
    # The index's PEP 740 provenance of a file failed its Sigstore verification (never expected).
    ATTESTATION_INVALID = "attestation-invalid"

    @property
    def layer(self) -> Layer:
        return _LAYER_OF[self]

    @property
    def recipe_may_expect(self) -> bool:
        """Whether a recipe may declare this kind known. What changes the files an installer
        puts on disk, or what runs by itself, never is."""
        return self not in _NEVER_EXPECTED


_LAYER_OF: dict[DivergenceKind, Layer] = {
    **dict.fromkeys(
        (
            DivergenceKind.ENTRY_ORDER,
            DivergenceKind.TIMESTAMP,
            DivergenceKind.COMPRESSION,
            DivergenceKind.PERMISSIONS,
            DivergenceKind.ATTRIBUTES,
            DivergenceKind.ZIP_COMMENT,
            DivergenceKind.ENTRY_COMMENT,
            DivergenceKind.EXTRA_FIELD,
            DivergenceKind.DIRECTORY_ENTRY,
        ),
        Layer.CONTAINER,
    ),
    **dict.fromkeys(
        (
            DivergenceKind.ONLY_PUBLISHED,
            DivergenceKind.ONLY_REBUILT,
            DivergenceKind.CONTENT,
            DivergenceKind.METADATA_FIELD,
            DivergenceKind.RECORD_ENTRY,
            DivergenceKind.INSTALLED_MODE,
            DivergenceKind.INSTALLED_FILE,
            DivergenceKind.RUNS_ON_ITS_OWN,
        ),
        Layer.MEMBER,
    ),
    **dict.fromkeys(
        (
            DivergenceKind.RECORD_MISMATCH,
            DivergenceKind.DUPLICATE_NAME,
            DivergenceKind.UNSAFE_NAME,
            DivergenceKind.SYMLINK,
            DivergenceKind.HEADER_MISMATCH,
            DivergenceKind.UNLISTED_DATA,
            DivergenceKind.INSTALL_DEPENDS,
            DivergenceKind.PATH_COLLISION,
        ),
        Layer.INTEGRITY,
    ),
    **dict.fromkeys(
        (
            DivergenceKind.NOT_IN_SDIST,
            DivergenceKind.DIFFERS_FROM_SDIST,
            DivergenceKind.NOT_IN_GIT,
            DivergenceKind.DIFFERS_FROM_GIT,
            DivergenceKind.ATTESTATION_INVALID,
        ),
        Layer.SOURCE,
    ),
}


_NEVER_EXPECTED = frozenset(
    {
        DivergenceKind.RUNS_ON_ITS_OWN,
        DivergenceKind.INSTALLED_FILE,
        DivergenceKind.INSTALLED_MODE,
        DivergenceKind.INSTALL_DEPENDS,
        DivergenceKind.PATH_COLLISION,
        DivergenceKind.ATTESTATION_INVALID,
    }
)


class Side(enum.Enum):
    PUBLISHED = "published"
    REBUILT = "rebuilt"
    BOTH = "both"


class Outcome(enum.Enum):
    """What became of one divergence; the verdict and the CI gate are decided from it."""

    # Every difference is accounted for by a rule that holds on evidence we trust.
    EXPLAINED = "explained"
    # A compiled member rebuilt by the same compiler: its code and data match function by
    # function and section by section, and any residue is named by a narrow rule.
    VERIFIED = "verified"
    # A compiled member built by another compiler: its code could not be verified. The
    # toolchain-invariant checks found nothing, and the publisher's own claims name the compiler.
    ATTRIBUTED = "attributed"
    # What a reviewer must look at.
    UNEXPLAINED = "unexplained"


class Origin(enum.Enum):
    """Whose word a reason rests on. Only the publisher's own claims never explain."""

    REBUILD = "rebuild"  # what the rebuild and the comparison of the two wheels show
    RECIPE = "recipe"  # a reviewed recipe of this repository
    TOOLCHAIN = "toolchain"  # a fact of the toolchains (glibc, the linker, the C runtime)
    PUBLISHER = "publisher"  # what the published files say of themselves (.comment, DWARF)


@dataclass(frozen=True)
class Reason:
    """One rule that holds for a divergence, and why."""

    rule: str  # the rule's id: "container", "elf-build-id", "recipe", ...
    text: str  # the sentence a person reads
    origin: Origin = Origin.REBUILD
    link: str | None = None  # where a recipe's reason is documented upstream


@dataclass(frozen=True)
class Finding:
    """One thing a toolchain-invariant check found on the published side only."""

    check: str  # "strings", "calls", "syscalls", "constructors", "relocations", ...
    what: str  # the string, the call target, the constructor...
    where: str  # the function or section (and data symbol) it sits in


@dataclass(frozen=True)
class Divergence:
    """One difference between the two wheels, or one finding about one of them.

    ``outcome`` is what became of it; ``reasons`` are the rules that hold, as data (for an
    unexplained divergence, those that cover part of it). Every report renders these fields;
    nothing parses a reason's text back.
    """

    kind: DivergenceKind
    summary: str  # one line a person reads first
    member: str | None = None  # None for whole-archive differences
    side: Side = Side.BOTH
    published: str | None = None  # the value on each side, short (a timestamp, a mode...)
    rebuilt: str | None = None
    detail: str = ""  # a capped unified diff, or an analyser's findings, as text
    outcome: Outcome = Outcome.UNEXPLAINED
    reasons: tuple[Reason, ...] = ()
    analyser: str | None = None  # which member analyser produced it, if any
    # The analyser's finer kinds of difference no rule explained (ELF aspects, e.g. "code").
    aspects: tuple[str, ...] = ()
    # A shorter summary for one-line listings ("" = the summary itself).
    brief: str = ""
    # The exported symbols behind an unexplained "exports" aspect (on one side only).
    symbols: tuple[str, ...] = ()
    # A text member's added and removed lines, each with its "+" or "-"; None when the diff
    # was cut short or the member is not text (a recipe's `lines` then cannot vouch for it).
    changed_lines: tuple[str, ...] | None = None
    # What the toolchain-invariant checks found (compiled members).
    findings: tuple[Finding, ...] = ()
    # The metadata field (WHEEL "Tag", METADATA "Requires-Dist") a field divergence is about.
    field: str | None = None
    # Every entry a grouped row stands for (container rows): matched one by one, never by the
    # first alone. Empty: the row is about ``member`` only.
    entries: tuple[str, ...] = ()

    @property
    def members(self) -> tuple[str, ...]:
        """The members this divergence is about (all of a grouped row's entries)."""
        if self.entries:
            return self.entries
        return (self.member,) if self.member is not None else ()

    @property
    def layer(self) -> Layer:
        return self.kind.layer

    @property
    def explained(self) -> bool:
        """Not for a reviewer to look at: explained, verified or attributed."""
        return self.outcome is not Outcome.UNEXPLAINED

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons)

    @property
    def explanation(self) -> str | None:
        """The reasons as one sentence, for display; None while the divergence is unexplained."""
        if self.outcome is Outcome.UNEXPLAINED:
            return None
        return "; ".join(r.text for r in self.reasons) or None

    def explained_by(self, *reasons: Reason, outcome: Outcome = Outcome.EXPLAINED) -> Divergence:
        """This divergence with ``reasons`` added and the outcome they give."""
        return replace(self, outcome=outcome, reasons=(*self.reasons, *reasons))


@dataclass(frozen=True)
class WheelInfo:
    """The identity of one wheel file in a comparison."""

    filename: str
    sha256: str
    size: int
    members: int


@dataclass(frozen=True)
class Comparison:
    published: WheelInfo
    rebuilt: WheelInfo
    verdict: Verdict
    # Sorted for the reviewer: unexplained first, then member, integrity, container layers.
    divergences: tuple[Divergence, ...]
    identical_members: int
    # Members whose bytes differ and that no analyser could say more about (e.g. binaries
    # awaiting a kind-specific analyser), by member kind.
    unanalysed: tuple[str, ...] = ()
    # Files of the published wheel that run without being imported, as installed
    # ("site-packages/x.pth", "console_scripts: name = module:func"); rebuild.compare.autorun.
    autorun: tuple[str, ...] = ()

    @property
    def unexplained(self) -> tuple[Divergence, ...]:
        return tuple(d for d in self.divergences if not d.explained)

    @property
    def attributed(self) -> tuple[Divergence, ...]:
        """Compiled members whose code could not be verified (built by another compiler)."""
        return tuple(d for d in self.divergences if d.outcome is Outcome.ATTRIBUTED)

    @property
    def verified(self) -> tuple[Divergence, ...]:
        return tuple(d for d in self.divergences if d.outcome is Outcome.VERIFIED)


# --- planning and building (the container path) -------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How the published wheel will be rebuilt: the effective recipe, replayable by a reviewer.

    ``origins`` says where each value came from (e.g. ``("backend_pin", "WHEEL Generator:
    bdist_wheel (0.41.1)")``); ``notes`` what could not be replayed.
    """

    image: str
    python: str  # the interpreter the build runs under, "3.11"
    wheel_tags: tuple[str, ...]  # the published wheel's tags, e.g. ("py3-none-any",)
    pure: bool
    generator: str | None  # the WHEEL Generator: line, verbatim
    backend: str | None  # "setuptools", "hatchling", "flit_core", ...
    backend_pins: tuple[str, ...]  # exact pins the Generator line gives, e.g. ("wheel==0.41.1",)
    exclude_newer: datetime | None  # build requirements resolved as the index stood then
    source_date_epoch: int | None  # from uniform zip entry timestamps; None = file mtimes
    umask: str | None  # replayed from the published permission bits, e.g. "022"
    environment: tuple[tuple[str, str], ...] = ()
    origins: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    # The platform the published wheel was repaired for: `auditwheel repair --plat` replays it.
    repair: str | None = None
    # From a recipe (recipes/<project>.toml): its path, or None when inferred from the wheel.
    recipe: str | None = None
    image_reference: str | None = None  # the registry image the recipe names (digest-pinned)
    config_settings: tuple[tuple[str, str], ...] = ()  # `uv build -C key=value`, in order
    requirements: tuple[str, ...] = ()  # exact build-requirement pins beyond the sdist's
    pre_build: tuple[str, ...] = ()  # shell steps run in the source tree before the build
    # Where the source sits in the container (upstream's path, e.g. "/project"): builds embed it.
    source_dir: str | None = None
    # False: the pinned requirements are installed in one environment, built without isolation.
    build_isolation: bool = True
    extra_inputs: tuple[ExtraInput, ...] = ()
    expected: tuple[ExpectedDivergence, ...] = ()
    # The compiler matched to the published objects' and the flags replayed (rebuild.toolchain).
    toolchain: Toolchain | None = None
    # Debian packages installed on top of ``image`` (upstream CI's before-all; rebuild.ci_config).
    system_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtraInput:
    """A file a recipe's build needs beyond the sdist, fetched on the host and hash-checked."""

    url: str
    sha256: str
    filename: str  # mounted read-only at /inputs/extra/<filename>


@dataclass(frozen=True)
class ExpectedDivergence:
    """A divergence a recipe declares known, matched by member glob AND divergence kind.

    ``aspects`` (ELF aspects) narrows a ``content`` divergence of a shared object: it is
    explained only when every aspect left unexplained is listed. ``lines`` (a regular
    expression) narrows a text diff: explained only when every changed line matches.
    Several expectations on one member explain it together.
    """

    member: str  # fnmatch glob over wheel member names
    kind: DivergenceKind
    reason: str
    link: str
    aspects: tuple[str, ...] = ()
    lines: str = ""
    # With aspects = ["exports"]: globs every exported symbol on one side only must match.
    symbols: tuple[str, ...] = ()
    # With aspects = ["invariants"]: "CHECK GLOB" patterns every toolchain-invariant finding
    # of the member must match ("calls PyObject_Call@plt").
    findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildLimits:
    """What one build may use before it is stopped."""

    timeout_s: float = 1800
    memory: str = "4g"
    pids: int = 1024


@dataclass(frozen=True)
class ImageInfo:
    """The build image actually used, as the report records it."""

    name: str
    tag: str
    image_id: str  # sha256:... of the image in the engine
    obtained: str  # "local", "pulled" or "bootstrapped"
    python: str
    manifest_sha256: str  # hash of the sorted package manifest
    packages: int
    drift: tuple[str, ...] = ()  # differences from the pinned manifest
    # A CPython the image built from source: "<tarball url>#sha256=<hex>"; empty: the suite's.
    python_source: str = ""


@dataclass(frozen=True)
class RepairOutcome:
    """What replaying ``auditwheel repair`` did: the repaired wheel, or why it refused."""

    platform: str  # the --plat asked for, e.g. "manylinux_2_17_x86_64"
    replayed: bool  # False: the unrepaired wheel was kept and compared
    reason: str = ""  # auditwheel's own words when it refused


@dataclass(frozen=True)
class BuildResult:
    """What the hermetic build did and produced."""

    wheel: Path
    image: ImageInfo
    requirements: tuple[str, ...]  # every build requirement installed, name==version
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    network: str  # "none": the container had no network
    duration_s: float
    log_path: Path
    repair: RepairOutcome | None = None  # None: no auditwheel repair was planned
    # (name==version, sha256 of the wheel installed) per build requirement: for attestations.
    requirement_digests: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Failure:
    """Why there is no rebuilt wheel: the verdict `failed`."""

    stage: str  # resolve / fetch / archive / plan / build / container / internal
    message: str
    hint: str | None = None
    exit_code: int = 10
    log_path: Path | None = None
    log_tail: str = ""


# --- where the source comes from (sdist, tagged commit) and what it was checked against ------


class SourceKind(enum.Enum):
    """Which source a check rebuilds from."""

    SDIST = "sdist"
    GIT = "git"  # the upstream repository at the release's commit
    BOTH = "both"  # builds from git, and checks the sdist against the tagged tree


class SourceEvidence(enum.Enum):
    """What named the repository or the commit, strongest first."""

    ATTESTATION = "attestation"  # PEP 740 provenance: the signing certificate's extensions
    USER = "user"  # --repo / --ref on the command line
    PROJECT_URL = "project-url"  # Source/Repository/Homepage URL on a known forge
    TAG = "tag"  # a tag matching the version, resolved to a commit


@dataclass(frozen=True)
class SourceRevision:
    """The upstream commit a release is checked against, and the evidence that named it."""

    repo_url: str
    commit: str  # the commit actually checked out (40 hex)
    ref: str | None  # e.g. "refs/tags/v1.2.3"; None when only a commit is known
    repo_evidence: SourceEvidence
    commit_evidence: SourceEvidence
    # What else was learned or could not be checked (e.g. the attestation's signature).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublisherAttestation:
    """One file's PEP 740 provenance, verified offline against the Trusted Publisher it names.

    The repository, workflow, commit and ref are read from the verified signing certificate,
    and only when ``verified``; a provenance that fails verification keeps only its reason.
    """

    file: str
    url: str
    verified: bool
    reason: str  # what was verified, or why it failed
    publisher: str | None = None  # "GitHub", "GitLab", "Google", "CircleCI"
    repository: str | None = None  # the source repository URI
    workflow: str | None = None  # the publishing workflow (its path, as the certificate names it)
    commit: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class ProvenanceCheck:
    """The source checks that need no build: wheel vs sdist, and sdist vs the tagged tree.

    ``findings`` are Divergences of the source layer; an unexplained one is a file a reviewer
    must look at (Python code in the wheel that is not the sdist's, a file in the sdist that is
    not in git).
    """

    wheel: str  # the wheel's filename
    sdist: str | None
    python_files: int  # Python source files in the wheel
    traced: int  # ... byte-identical to their sdist counterpart
    findings: tuple[Divergence, ...] = ()
    revision: SourceRevision | None = None
    sdist_files: int | None = None  # files in the sdist compared with the tree (None: not done)
    sdist_matched: int | None = None  # ... byte-identical at the same path
    notes: tuple[str, ...] = ()
    # The release's PEP 740 provenance, each file's verified (or failing) attestation.
    attestations: tuple[PublisherAttestation, ...] = ()

    @property
    def unexplained(self) -> tuple[Divergence, ...]:
        return tuple(d for d in self.findings if not d.explained)


@dataclass(frozen=True)
class Report:
    """Everything one verification produced; what every report format renders."""

    tool_version: str
    created: datetime
    verdict: Verdict
    target: Target | None = None
    release: Release | None = None
    comparison: Comparison | None = None
    failure: Failure | None = None
    # Filled by the container path: the effective plan and what the build did.
    plan: Plan | None = None
    build: BuildResult | None = None
    # Findings outside the comparison (e.g. a local wheel whose hash the index does not know).
    notes: tuple[str, ...] = ()
    # The source checks needing no build, and which source the rebuild used (None: no build).
    provenance: ProvenanceCheck | None = None
    source: SourceKind | None = None

    @property
    def exit_code(self) -> int:
        if self.failure is not None:
            return self.failure.exit_code
        return self.verdict.exit_code


class ToolchainEvidence(enum.Enum):
    """Which evidence named the compiler that built the published wheel's compiled members."""

    PRODUCER = "dw_at_producer"  # DWARF DW_AT_producer of the objects' compile units
    COMMENT = "comment"  # the objects' .comment strings
    IMAGE_HISTORY = "image-history"  # the platform tag and upload date: which manylinux image
    NONE = "none"  # nothing said it (a pure wheel, or stripped objects of an unknown platform)


class ToolchainMatch(enum.Enum):
    """How close the compiler of the chosen image is to the published one."""

    EXACT = "exact"  # the same release number, GCC 10.2.1 and 10.2.1 (snapshots may differ)
    MAJOR_MINOR = "major.minor"  # the same release series, e.g. GCC 12.2.1 and 12.2.0
    NONE = "none"  # another compiler, or the published one is unknown: code at best attributed


@dataclass(frozen=True)
class Toolchain:
    """The compiler of the published compiled members, the image's, and the flags replayed.

    What the publisher's objects say (``published_*``, ``published_from``, ``replayed``) only
    chooses the image and the flags; it never explains a divergence. ``environment`` is what the
    build gets (CFLAGS, CXXFLAGS): the replayed flags, then those undoing the image
    distribution's defaults (``undone``), so that they come last on the compiler's command line.
    """

    evidence: ToolchainEvidence
    published_family: str  # "gcc", "clang"; "" when unknown
    published_version: str  # "10.2.1"; "" when unknown
    published_from: str  # the string it was read from, verbatim (bounded), or the rule used
    image: str
    image_family: str  # the image's default compiler, from its packages.lock: "gcc"
    image_version: str  # "10.2.1"; "" when the image's lock names no compiler
    match: ToolchainMatch
    replayed: tuple[str, ...] = ()  # flags taken from DW_AT_producer, e.g. ("-O3", "-fwrapv")
    undone: tuple[str, ...] = ()  # flags undoing the distribution's defaults
    dropped: tuple[str, ...] = ()  # producer flags not replayed (not on the allow-list)
    environment: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def published(self) -> str:
        return f"{self.published_family} {self.published_version}".strip() or "unknown"

    @property
    def rebuilt(self) -> str:
        return f"{self.image_family} {self.image_version}".strip() or "unknown"
