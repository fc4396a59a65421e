"""Build requirements resolved on the host as of the upload time: when the publisher's backend
pin (the WHEEL Generator's) and the sdist's own requirements cannot both hold, the error says
which requirement has no candidate and why, and the plan falls back to the sdist's, saying so.

Resolved by uv against the real index (network).
"""

from __future__ import annotations

import io
import re
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rebuild.build import prepare_inputs, uv_reason
from rebuild.errors import ArchiveError, ResolveError
from rebuild.fetch import Cache, local_artifact
from rebuild.index import DEFAULT_INDEX_URL
from rebuild.models import Plan

pytestmark = pytest.mark.network
UPLOADED = datetime(2024, 6, 22, 17, 27, tzinfo=UTC)  # just after hatchling 1.25.0's upload


def _sdist(path: Path, requires: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {
            "PKG-INFO": "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
            "pyproject.toml": (
                f"[build-system]\nrequires = [{requires}]\nbuild-backend = 'hatchling.build'\n"
            ),
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(f"demo-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _plan(pins: tuple[str, ...]) -> Plan:
    return Plan(
        image="bookworm-py311",
        python="3.11",
        wheel_tags=("py3-none-any",),
        pure=True,
        generator="hatchling 1.25.0",
        backend="hatchling",
        backend_pins=pins,
        exclude_newer=UPLOADED,
        source_date_epoch=None,
        umask=None,
    )


def test_a_generator_pin_the_sdist_rules_out_is_dropped_and_said(tmp_path: Path) -> None:
    sdist = local_artifact(_sdist(tmp_path / "demo-1.0.tar.gz", "'hatchling<1.0'"))
    seen: list[str] = []
    inputs = prepare_inputs(
        _plan(("hatchling==1.25.0",)),
        sdist,
        workdir=tmp_path / "work",
        index_url=DEFAULT_INDEX_URL,
        cache=Cache(tmp_path / "cache"),
        log=seen.append,
    )
    (pin,) = [p for p in inputs.requirements if p.startswith("hatchling==")]
    assert pin.startswith("hatchling==0.")
    (note,) = inputs.notes
    assert note.startswith("hatchling==1.25.0 (the WHEEL Generator's) has no resolution")
    assert "hatchling<1.0" in note and f"so the backend is {pin}" in note
    assert "no resolution with hatchling==1.25.0: trying without it" in seen


def test_no_resolution_at_all_names_the_requirement_and_why(tmp_path: Path) -> None:
    # uv alone would say "only no-such-project-rebuild-test<1 is available": the index says
    # there is no such project, so the Generator's pin is not dropped in a retry that cannot help.
    sdist = local_artifact(
        _sdist(tmp_path / "demo-1.0.tar.gz", "'hatchling', 'no-such-project-rebuild-test>=1'")
    )
    seen: list[str] = []
    with pytest.raises(ResolveError) as caught:
        prepare_inputs(
            _plan(("hatchling==1.25.0",)),
            sdist,
            workdir=tmp_path / "work",
            index_url=DEFAULT_INDEX_URL,
            cache=Cache(tmp_path / "cache"),
            log=seen.append,
        )
    message = caught.value.message
    assert message.startswith("the build requirements cannot be resolved as of 2024-06-22")
    assert (
        ": no-such-project-rebuild-test>=1 has no candidate: the index serves no project named "
        "no-such-project-rebuild-test; uv: Because"
    ) in message
    assert not [line for line in seen if "trying without it" in line]


def test_a_requirement_released_after_the_upload_says_when_it_came(tmp_path: Path) -> None:
    sdist = local_artifact(_sdist(tmp_path / "demo-1.0.tar.gz", "'hatchling>=1.26'"))
    with pytest.raises(ResolveError) as caught:
        prepare_inputs(
            _plan(()),
            sdist,
            workdir=tmp_path / "work",
            index_url=DEFAULT_INDEX_URL,
            cache=Cache(tmp_path / "cache"),
            log=lambda _: None,
        )
    assert re.search(
        r"hatchling>=1\.26 has no candidate: the first release of hatchling in that range, "
        r"1\.26\.\d+, was uploaded 2024-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
        r"after 2024-06-22 17:27:00 UTC",
        caught.value.message,
    ), caught.value.message


@pytest.mark.parametrize(
    "requirement",
    [
        "'hatchling @ https://elsewhere.example/hatchling-1.25.0-py3-none-any.whl'",
        "'secret @ file:///etc/passwd'",
    ],
)
def test_a_build_requirement_from_a_url_is_refused_before_anything_is_fetched(
    tmp_path: Path, requirement: str
) -> None:
    # The sdist under check must not choose what the host downloads or reads.
    sdist = local_artifact(_sdist(tmp_path / "demo-1.0.tar.gz", requirement))
    with pytest.raises(ArchiveError, match=r"from a URL .* not an index") as caught:
        prepare_inputs(
            _plan(()),
            sdist,
            workdir=tmp_path / "work",
            index_url="http://127.0.0.1:9/simple/",  # nothing answers: nothing may be asked
            cache=Cache(tmp_path / "cache"),
            log=lambda _: None,
        )
    assert caught.value.hint is not None and "time-warped" in caught.value.hint


def test_uv_s_reason_is_read_in_both_of_its_layouts() -> None:
    plain = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because you require hatchling==1.25.0 and hatchling<1.0, we can conclude\n"
        "         that your requirements are unsatisfiable.\n"
    )
    fancy = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because there are no versions of foo and you require foo, we can conclude\n"
        "      that your requirements are unsatisfiable.\n\n"
        "      hint: a hint\n"
    )
    assert uv_reason(plain) == (
        "Because you require hatchling==1.25.0 and hatchling<1.0, we can conclude that your "
        "requirements are unsatisfiable."
    )
    assert uv_reason(fancy) == (
        "Because there are no versions of foo and you require foo, we can conclude that your "
        "requirements are unsatisfiable."
    )
    assert uv_reason("error: something else entirely") is None
