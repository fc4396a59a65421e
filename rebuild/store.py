"""The results store: every verification a batch made, with its history, in one SQLite file.

A store holds releases, runs (one per ``rebuild batch``), results (one per verification: the
verdict, the build's provenance, timings, the report and log paths) and each result's
divergences. Each release has exactly one *current* result (the latest); older ones are its
history. Every write is one transaction, and the file is in WAL mode with full sync: a process
killed at any instant (``kill -9``) leaves the store as it was before the write or after it,
never with half a result. A run that was killed stays ``running`` with a pid that is gone, which
is how a later run recognises it.

What changed is read from the current results (:func:`build_review`): a *regression* is a
version that verifies worse than the project's version before it (reproducible or equivalent,
then not; or more unexplained divergences), and a review lists regressions first, then
unexplained divergences, then failures, then the rest.

The schema is versioned with SQLite's ``user_version``; :data:`MIGRATIONS` take a store from
each version to the next, each in its own transaction. A store written by a newer rebuild is
refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import assert_never

import platformdirs
from packaging.version import InvalidVersion, Version

from rebuild.errors import EXIT_NEEDS_REVIEW, EXIT_REPRODUCIBLE, RebuildError, UsageError
from rebuild.models import Origin, Outcome, Plan, Reason, Report, Verdict

SCHEMA_VERSION = 4
STORE_FILENAME = "results.sqlite"

# MIGRATIONS[n] takes a store at schema version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
            tool_version TEXT NOT NULL,
            input TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL
        )""",
        """CREATE TABLE releases (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            version TEXT NOT NULL,
            UNIQUE (project, version)
        )""",
        """CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            release_id INTEGER NOT NULL REFERENCES releases (id),
            run_id INTEGER REFERENCES runs (id),
            current INTEGER NOT NULL CHECK (current IN (0, 1)),
            created TEXT NOT NULL,
            verdict TEXT NOT NULL,
            exit_code INTEGER NOT NULL,
            divergences INTEGER NOT NULL,
            unexplained INTEGER NOT NULL,
            tool_version TEXT NOT NULL,
            plan_digest TEXT,
            plan_json TEXT,
            index_url TEXT,
            wheel_filename TEXT,
            wheel_sha256 TEXT,
            sdist_filename TEXT,
            sdist_sha256 TEXT,
            rebuilt_sha256 TEXT,
            image_tag TEXT,
            image_id TEXT,
            requirements_json TEXT NOT NULL,
            failure_stage TEXT,
            failure_message TEXT,
            failure_hint TEXT,
            failure_log_tail TEXT,
            notes_json TEXT NOT NULL,
            seconds REAL NOT NULL,
            report_path TEXT,
            log_path TEXT
        )""",
        # What makes "exactly one current result per release" a fact rather than a hope.
        "CREATE UNIQUE INDEX results_one_current ON results (release_id) WHERE current = 1",
        "CREATE INDEX results_by_release ON results (release_id, created)",
        """CREATE TABLE divergences (
            result_id INTEGER NOT NULL REFERENCES results (id),
            ordinal INTEGER NOT NULL,
            kind TEXT NOT NULL,
            layer TEXT NOT NULL,
            member TEXT,
            side TEXT NOT NULL,
            summary TEXT NOT NULL,
            published TEXT,
            rebuilt TEXT,
            detail TEXT NOT NULL,
            explanation TEXT,
            analyser TEXT,
            PRIMARY KEY (result_id, ordinal)
        )""",
        """CREATE TABLE timings (
            result_id INTEGER NOT NULL REFERENCES results (id),
            stage TEXT NOT NULL,
            seconds REAL NOT NULL,
            PRIMARY KEY (result_id, stage)
        )""",
        """CREATE TABLE run_items (
            run_id INTEGER NOT NULL REFERENCES runs (id),
            release_id INTEGER NOT NULL REFERENCES releases (id),
            result_id INTEGER NOT NULL REFERENCES results (id),
            reused INTEGER NOT NULL CHECK (reused IN (0, 1)),
            PRIMARY KEY (run_id, release_id)
        )""",
    ),
    # 2: compiled members verified or only attributed; each divergence's outcome and reasons
    # as data. Rows of version 1 read as they were: explained or not.
    (
        "ALTER TABLE results ADD COLUMN verified INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE results ADD COLUMN attributed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE divergences ADD COLUMN outcome TEXT",
        "ALTER TABLE divergences ADD COLUMN reasons_json TEXT NOT NULL DEFAULT '[]'",
        "UPDATE divergences SET outcome = CASE WHEN explanation IS NULL THEN 'unexplained' "
        "ELSE 'explained' END",
    ),
    # 3: each result's in-toto attestations (rebuild.attest.bundle), as written, and the key
    # that signed them (NULL: unsigned).
    (
        """CREATE TABLE attestations (
            result_id INTEGER PRIMARY KEY REFERENCES results(id),
            keyid TEXT,
            bundle TEXT NOT NULL
        )""",
    ),
    # 4: the key a distributed batch gives each verification it sends out (the release, its
    # plan, the ticket): a task that ran twice, or a result read twice, is stored once.
    (
        "ALTER TABLE results ADD COLUMN task_key TEXT",
        "CREATE UNIQUE INDEX results_task_key ON results (task_key) WHERE task_key IS NOT NULL",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION  # noqa: S101 - a module invariant, checked at import


def default_store_path() -> Path:
    """``$REBUILD_STORE`` if set, else ``results.sqlite`` in the user data directory."""
    override = os.environ.get("REBUILD_STORE")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("rebuild") / STORE_FILENAME


@dataclass(frozen=True)
class StoredDivergence:
    """A divergence as stored; kinds stay strings so an older store still reads."""

    kind: str
    layer: str
    member: str | None
    side: str
    summary: str
    published: str | None
    rebuilt: str | None
    detail: str
    explanation: str | None
    analyser: str | None
    outcome: Outcome
    reasons: tuple[Reason, ...] = ()

    @property
    def explained(self) -> bool:
        return self.outcome is not Outcome.UNEXPLAINED


@dataclass(frozen=True)
class StoredResult:
    """One verification of one release, as the store keeps it."""

    id: int
    project: str
    version: str
    run_id: int | None
    current: bool
    created: datetime
    verdict: Verdict
    exit_code: int
    divergences: int
    unexplained: int
    tool_version: str
    plan_digest: str | None
    plan_json: str | None
    index_url: str | None
    wheel_filename: str | None
    wheel_sha256: str | None
    sdist_filename: str | None
    sdist_sha256: str | None
    rebuilt_sha256: str | None
    image_tag: str | None
    image_id: str | None
    requirements: tuple[str, ...]
    failure_stage: str | None
    failure_message: str | None
    failure_hint: str | None
    failure_log_tail: str | None
    notes: tuple[str, ...]
    seconds: float
    report_path: Path | None
    log_path: Path | None
    verified: int = 0
    attributed: int = 0  # compiled members whose code could not be verified


@dataclass(frozen=True)
class Run:
    id: int
    started: datetime
    finished: datetime | None
    status: str  # running / finished / interrupted
    tool_version: str
    input: str
    jobs: int
    host: str
    pid: int

    @property
    def killed(self) -> bool:
        """Still marked running, but its process on this host is gone: it was killed."""
        return (
            self.status == "running" and self.host == socket.gethostname() and not _alive(self.pid)
        )


@dataclass(frozen=True)
class RunItem:
    project: str
    version: str
    result_id: int
    reused: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: alive, as far as we can tell
    return True


def _pep440(version: str) -> Version | str:
    """The version as PEP 440 compares it; text that is not a version compares as itself."""
    try:
        return Version(version)
    except InvalidVersion:
        return version


def _now() -> str:
    return datetime.now(UTC).isoformat()


_RESULT_COLUMNS = (
    "results.id, releases.project, releases.version, results.run_id, results.current, "
    "results.created, results.verdict, results.exit_code, results.divergences, "
    "results.unexplained, results.tool_version, results.plan_digest, results.plan_json, "
    "results.index_url, results.wheel_filename, results.wheel_sha256, results.sdist_filename, "
    "results.sdist_sha256, results.rebuilt_sha256, results.image_tag, results.image_id, "
    "results.requirements_json, results.failure_stage, results.failure_message, "
    "results.failure_hint, results.failure_log_tail, results.notes_json, results.seconds, "
    "results.report_path, results.log_path, results.verified, results.attributed"
)
_FROM_RESULTS = (
    f"SELECT {_RESULT_COLUMNS} FROM results JOIN releases ON releases.id = results.release_id"  # noqa: S608 - fixed column list
)


def _reasons(stored: list[dict[str, str | None]]) -> tuple[Reason, ...]:
    return tuple(
        Reason(str(r["rule"]), str(r["text"]), Origin(r["origin"]), r.get("link")) for r in stored
    )


def _result(row: sqlite3.Row) -> StoredResult:
    values = list(row)
    values[4] = bool(values[4])
    values[5] = datetime.fromisoformat(values[5])
    values[6] = Verdict(values[6])
    values[21] = tuple(json.loads(values[21]))
    values[26] = tuple(json.loads(values[26]))
    values[28] = Path(values[28]) if values[28] else None
    values[29] = Path(values[29]) if values[29] else None
    return StoredResult(*values)


class Store:
    """One results store file. Use as a context manager, or call :meth:`close`.

    The connection belongs to the thread that opened the store: a batch records results from
    its main thread only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are begun and ended here, explicitly.
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed result survives a power cut too, not only a killed process.
            self._db.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise UsageError(
                f"{path} is not a results store: {e}",
                hint="give --store a new file name, or the file a previous batch wrote",
            ) from e
        except OSError as e:
            raise UsageError(f"cannot open the store {path}: {e}") from e

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two batches on one store queue rather
        # than fail half-way through a result.
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise RebuildError(
                f"cannot write to the store {self.path}: {e}",
                hint="another process may hold it locked; try again when it has finished",
            ) from e
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise RebuildError(f"cannot write to the store {self.path}: {e}") from e

    # --- schema ----------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{self.path} has schema version {version}; this rebuild knows up to "
                f"{SCHEMA_VERSION}",
                hint="upgrade rebuild to read this store",
            )
        for step in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                # PRAGMA takes no parameters; the value is our own integer.
                db.execute(f"PRAGMA user_version = {step + 1}")

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, *, tool_version: str, input: str, jobs: int) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (started, status, tool_version, input, jobs, host, pid) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (_now(), tool_version, input, jobs, socket.gethostname(), os.getpid()),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, *, interrupted: bool = False) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET finished = ?, status = ? WHERE id = ?",
                (_now(), "interrupted" if interrupted else "finished", run_id),
            )

    def runs(self) -> list[Run]:
        rows = self._db.execute(
            "SELECT id, started, finished, status, tool_version, input, jobs, host, pid "
            "FROM runs ORDER BY id"
        ).fetchall()
        return [
            Run(
                id=r[0],
                started=datetime.fromisoformat(r[1]),
                finished=datetime.fromisoformat(r[2]) if r[2] else None,
                status=r[3],
                tool_version=r[4],
                input=r[5],
                jobs=r[6],
                host=r[7],
                pid=r[8],
            )
            for r in rows
        ]

    def run_items(self, run_id: int) -> list[RunItem]:
        rows = self._db.execute(
            "SELECT releases.project, releases.version, run_items.result_id, run_items.reused "
            "FROM run_items JOIN releases ON releases.id = run_items.release_id "
            "WHERE run_items.run_id = ? ORDER BY releases.project, releases.version",
            (run_id,),
        ).fetchall()
        return [RunItem(r[0], r[1], r[2], bool(r[3])) for r in rows]

    # --- results ---------------------------------------------------------------------------

    def _find_release(self, db: sqlite3.Connection, project: str, version: str) -> int | None:
        """The release stored for ``version`` as PEP 440 compares it ("1.16" is "1.16.0")."""
        wanted = _pep440(version)
        rows = db.execute("SELECT id, version FROM releases WHERE project = ?", (project,))
        return next((int(i) for i, v in rows if _pep440(v) == wanted), None)

    def _release_id(self, db: sqlite3.Connection, project: str, version: str) -> int:
        found = self._find_release(db, project, version)
        if found is not None:
            return found
        cursor = db.execute(
            "INSERT INTO releases (project, version) VALUES (?, ?)", (project, version)
        )
        return int(cursor.lastrowid or 0)

    def record(
        self,
        report: Report,
        *,
        run_id: int | None,
        seconds: float,
        timings: Sequence[tuple[str, float]] = (),
        report_path: Path | None = None,
        attestation: tuple[str, str | None] | None = None,
        task_key: str | None = None,
    ) -> int:
        """Store one verification as the release's current result; returns its id.

        ``attestation``: the in-toto bundle of the result and the id of the key that signed it.
        ``task_key``: what identifies the verification across processes (a distributed task);
        a result already stored under it is not stored again, and its id is returned (counted
        for ``run_id`` too).
        """
        if report.target is None:
            raise RebuildError("a report without a target cannot be stored (internal)")
        comparison = report.comparison
        # The source checks' findings are the reviewer's too: a file of the wheel that is not
        # the sdist's makes a release divergent even when the rebuild matches.
        divergences = (
            *(comparison.divergences if comparison else ()),
            *(report.provenance.findings if report.provenance else ()),
        )
        release, build, failure, plan = report.release, report.build, report.failure, report.plan
        log_path = build.log_path if build else failure.log_path if failure else None
        plan_json = json.dumps(_plan_document(plan), sort_keys=True) if plan else None
        row = {
            "created": report.created.isoformat(),
            "verdict": report.verdict.value,
            "exit_code": report.exit_code,
            "divergences": len(divergences),
            "unexplained": sum(1 for d in divergences if not d.explained),
            "verified": sum(1 for d in divergences if d.outcome is Outcome.VERIFIED),
            "attributed": sum(1 for d in divergences if d.outcome is Outcome.ATTRIBUTED),
            "tool_version": report.tool_version,
            "plan_digest": plan_digest(plan) if plan else None,
            "plan_json": plan_json,
            "index_url": release.index_url if release else None,
            "wheel_filename": comparison.published.filename
            if comparison
            else (release.wheel.filename if release and release.wheel else None),
            "wheel_sha256": comparison.published.sha256
            if comparison
            else (release.wheel.sha256 if release and release.wheel else None),
            "sdist_filename": release.sdist.filename if release and release.sdist else None,
            "sdist_sha256": release.sdist.sha256 if release and release.sdist else None,
            "rebuilt_sha256": comparison.rebuilt.sha256 if comparison else None,
            "image_tag": build.image.tag if build else None,
            "image_id": build.image.image_id if build else None,
            "requirements_json": json.dumps(list(build.requirements) if build else []),
            "failure_stage": failure.stage if failure else None,
            "failure_message": failure.message if failure else None,
            "failure_hint": failure.hint if failure else None,
            "failure_log_tail": failure.log_tail if failure else None,
            "notes_json": json.dumps(list(report.notes)),
            "seconds": seconds,
            "report_path": str(report_path) if report_path else None,
            "log_path": str(log_path) if log_path else None,
            "task_key": task_key,
        }
        with self._transaction() as db:
            release_id = self._release_id(db, report.target.project, report.target.version)
            if task_key is not None:
                found = db.execute(
                    "SELECT id FROM results WHERE task_key = ?", (task_key,)
                ).fetchone()
                if found is not None:
                    if run_id is not None:
                        db.execute(
                            "INSERT OR IGNORE INTO run_items (run_id, release_id, result_id, "
                            "reused) VALUES (?, ?, ?, 0)",
                            (run_id, release_id, int(found[0])),
                        )
                    return int(found[0])
            db.execute("UPDATE results SET current = 0 WHERE release_id = ?", (release_id,))
            columns = ", ".join(row)
            marks = ", ".join(f":{k}" for k in row)
            cursor = db.execute(
                f"INSERT INTO results (release_id, run_id, current, {columns}) "  # noqa: S608 - column names are ours
                f"VALUES (:release_id, :run_id, 1, {marks})",
                {**row, "release_id": release_id, "run_id": run_id},
            )
            result_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO divergences (result_id, ordinal, kind, layer, member, side, "
                "summary, published, rebuilt, detail, explanation, analyser, outcome, "
                "reasons_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        result_id,
                        i,
                        d.kind.value,
                        d.layer.value,
                        d.member,
                        d.side.value,
                        d.summary,
                        d.published,
                        d.rebuilt,
                        d.detail,
                        d.explanation,
                        d.analyser,
                        d.outcome.value,
                        json.dumps(
                            [dataclasses.asdict(r) | {"origin": r.origin.value} for r in d.reasons]
                        ),
                    )
                    for i, d in enumerate(divergences)
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO timings (result_id, stage, seconds) VALUES (?, ?, ?)",
                [(result_id, stage, s) for stage, s in timings],
            )
            if run_id is not None:
                db.execute(
                    "INSERT OR REPLACE INTO run_items (run_id, release_id, result_id, reused) "
                    "VALUES (?, ?, ?, 0)",
                    (run_id, release_id, result_id),
                )
            if attestation is not None:
                db.execute(
                    "INSERT INTO attestations (result_id, bundle, keyid) VALUES (?, ?, ?)",
                    (result_id, *attestation),
                )
        return result_id

    def attestation(self, result_id: int) -> tuple[str, str | None] | None:
        """The in-toto bundle kept with a result, and the id of its signing key (None: none)."""
        row = self._db.execute(
            "SELECT bundle, keyid FROM attestations WHERE result_id = ?", (result_id,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def reuse(self, run_id: int, result_id: int) -> None:
        """Count an earlier result as this run's verdict for its release (not re-verified)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO run_items (run_id, release_id, result_id, reused) "
                "SELECT ?, release_id, id, 1 FROM results WHERE id = ?",
                (run_id, result_id),
            )

    def current(self, project: str, version: str) -> StoredResult | None:
        release_id = self._find_release(self._db, project, version)
        row = self._db.execute(
            f"{_FROM_RESULTS} WHERE releases.id = ? AND results.current = 1", (release_id,)
        ).fetchone()
        return _result(row) if row else None

    def current_results(self) -> list[StoredResult]:
        rows = self._db.execute(
            f"{_FROM_RESULTS} WHERE results.current = 1 ORDER BY releases.project, results.id"
        ).fetchall()
        return [_result(r) for r in rows]

    def result(self, result_id: int) -> StoredResult | None:
        row = self._db.execute(f"{_FROM_RESULTS} WHERE results.id = ?", (result_id,)).fetchone()
        return _result(row) if row else None

    def history(self, project: str) -> list[StoredResult]:
        """Every verification of every version of ``project``, newest first."""
        rows = self._db.execute(
            f"{_FROM_RESULTS} WHERE releases.project = ? ORDER BY results.created DESC, "
            "results.id DESC",
            (project,),
        ).fetchall()
        return [_result(r) for r in rows]

    def divergences(self, result_id: int) -> list[StoredDivergence]:
        rows = self._db.execute(
            "SELECT kind, layer, member, side, summary, published, rebuilt, detail, "
            "explanation, analyser, outcome, reasons_json FROM divergences "
            "WHERE result_id = ? ORDER BY ordinal",
            (result_id,),
        ).fetchall()
        return [
            StoredDivergence(
                kind=r[0],
                layer=r[1],
                member=r[2],
                side=r[3],
                summary=r[4],
                published=r[5],
                rebuilt=r[6],
                detail=r[7],
                explanation=r[8],
                analyser=r[9],
                outcome=Outcome(r[10]),
                reasons=_reasons(json.loads(r[11])),
            )
            for r in rows
        ]

    def timings(self, result_id: int) -> list[tuple[str, float]]:
        rows = self._db.execute(
            "SELECT stage, seconds FROM timings WHERE result_id = ? ORDER BY rowid", (result_id,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def count(self, table: str) -> int:
        """Rows in one of the store's tables (for checks and tests)."""
        tables = ("runs", "releases", "results", "divergences", "timings", "run_items")
        if table not in (*tables, "attestations"):
            raise UsageError(f"no table {table!r} in a results store")
        return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def plan_digest(plan: Plan) -> str:
    """What a reused verdict must share with a new check: the same effective recipe."""
    text = json.dumps(_plan_document(plan), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _plan_document(plan: object) -> object:
    """A plan as plain JSON values (tuples to lists, datetimes to ISO strings)."""
    if dataclasses.is_dataclass(plan) and not isinstance(plan, type):
        return {f.name: _plan_document(getattr(plan, f.name)) for f in dataclasses.fields(plan)}
    if isinstance(plan, tuple | list):
        return [_plan_document(v) for v in plan]
    if isinstance(plan, datetime):
        return plan.isoformat()
    if isinstance(plan, enum.Enum):
        return plan.value
    return plan


# --- what changed: regressions, and the order a reviewer reads results in -----------------


class Attention(enum.Enum):
    """Why a current result is (or is not) in front of a person; ordered most urgent first."""

    REGRESSION = "regression"
    UNEXPLAINED = "unexplained"
    FAILED = "failed"
    # Divergent, nothing unexplained, but compiled code not verified (another compiler).
    ATTRIBUTED = "attributed"
    EXPLAINED = "explained"  # divergent, every divergence explained or verified
    EQUIVALENT = "equivalent"
    REPRODUCIBLE = "reproducible"

    @property
    def rank(self) -> int:
        return list(Attention).index(self)

    @property
    def needs_review(self) -> bool:
        """What fails the CI gate: a regression or an unexplained divergence."""
        return self in (Attention.REGRESSION, Attention.UNEXPLAINED)


_GOOD = (Verdict.REPRODUCIBLE, Verdict.EQUIVALENT)


@dataclass(frozen=True)
class Regression:
    """A version that verifies worse than the version of its project before it."""

    previous_version: str
    previous_verdict: Verdict
    previous_unexplained: int
    reason: str


@dataclass(frozen=True)
class ReviewEntry:
    result: StoredResult
    attention: Attention
    regression: Regression | None = None


@dataclass(frozen=True)
class Review:
    """Current results, most urgent first: regressions, unexplained, failed, then the rest."""

    entries: tuple[ReviewEntry, ...]
    # The CI switch: compiled code that could only be attributed needs review too.
    fail_on_attributed: bool = False
    # pip-audit's --strict: a release that failed to verify, or nothing to review, fails too.
    strict: bool = False

    @property
    def regressions(self) -> tuple[ReviewEntry, ...]:
        return tuple(e for e in self.entries if e.regression is not None)

    def count(self, attention: Attention) -> int:
        return sum(1 for e in self.entries if e.attention is attention)

    @property
    def needs_review(self) -> bool:
        if self.strict and (not self.entries or self.count(Attention.FAILED)):
            return True
        return any(
            e.attention.needs_review
            or (self.fail_on_attributed and e.attention is Attention.ATTRIBUTED)
            for e in self.entries
        )

    @property
    def good(self) -> int:
        """Releases whose wheel is reproducible or equivalent: verified as a whole."""
        return self.count(Attention.REPRODUCIBLE) + self.count(Attention.EQUIVALENT)

    @property
    def exit_code(self) -> int:
        return EXIT_NEEDS_REVIEW if self.needs_review else EXIT_REPRODUCIBLE


def regression_between(previous: StoredResult, result: StoredResult) -> Regression | None:
    """``result`` regressed from ``previous`` (the project's version before it), or ``None``."""
    reason = None
    if previous.verdict in _GOOD and result.verdict not in _GOOD:
        reason = (
            f"{previous.version} was {previous.verdict.value}, "
            f"{result.version} is {result.verdict.value}"
        )
    elif result.unexplained > previous.unexplained:
        reason = (
            f"unexplained divergences grew from {previous.unexplained} in {previous.version} "
            f"to {result.unexplained}"
        )
    if reason is None:
        return None
    return Regression(previous.version, previous.verdict, previous.unexplained, reason)


def _attention(result: StoredResult, regression: Regression | None) -> Attention:
    if regression is not None:
        return Attention.REGRESSION
    if result.unexplained:
        return Attention.UNEXPLAINED
    match result.verdict:
        case Verdict.FAILED:
            return Attention.FAILED
        case Verdict.DIVERGENT:
            return Attention.ATTRIBUTED if result.attributed else Attention.EXPLAINED
        case Verdict.EQUIVALENT:
            return Attention.EQUIVALENT
        case Verdict.REPRODUCIBLE:
            return Attention.REPRODUCIBLE
        case _:
            assert_never(result.verdict)


def build_review(
    results: Sequence[StoredResult],
    *,
    only: Collection[tuple[str, str]] | None = None,
    fail_on_attributed: bool = False,
    strict: bool = False,
) -> Review:
    """Rank ``results`` (current ones) for a reviewer; ``only`` keeps these (project, version).

    Regressions are found across every result given, so pass them all and narrow with ``only``.
    """
    by_project: dict[str, list[StoredResult]] = {}
    for result in results:
        by_project.setdefault(result.project, []).append(result)
    entries: list[ReviewEntry] = []
    for versions in by_project.values():
        versions.sort(key=lambda r: Version(r.version))
        for i, result in enumerate(versions):
            if only is not None and (result.project, result.version) not in only:
                continue
            regression = regression_between(versions[i - 1], result) if i else None
            entries.append(ReviewEntry(result, _attention(result, regression), regression))
    entries.sort(key=lambda e: (e.attention.rank, e.result.project, Version(e.result.version)))
    return Review(tuple(entries), fail_on_attributed, strict)
