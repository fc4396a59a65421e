"""Replaying auditwheel: the plan sees a repaired wheel, the build asks for the repair."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from compare.wheels import BASE, DIST_INFO, make_wheel

from rebuild.build import (
    REPAIR_LOG,
    REPAIR_REFUSED,
    build_script,
    repair_outcome,
    requirements_to_resolve,
)
from rebuild.models import RepairOutcome
from rebuild.plan import plan_build

IMAGES = {"bookworm-py311": "3.11"}
DIRECTORY = stat.S_IFDIR | 0o755


def _wheel_file(tags: list[str], generator: str = "bdist_wheel (0.42.0)") -> bytes:
    lines = ["Wheel-Version: 1.0", f"Generator: {generator}", "Root-Is-Purelib: false"]
    return ("\n".join([*lines, *(f"Tag: {t}" for t in tags)]) + "\n").encode()


def platform_wheel(
    tmp_path: Path,
    filename: str,
    tags: list[str],
    *,
    libs: dict[str, bytes] | None = None,
    generator: str = "bdist_wheel (0.42.0)",
) -> Path:
    members = {
        **BASE,
        f"{DIST_INFO}/WHEEL": _wheel_file(tags, generator),
        "demo/_speedups.cpython-311-x86_64-linux-gnu.so": b"\x7fELF not really",
        **(libs or {}),
    }
    modes = {name: DIRECTORY for name in members if name.endswith("/")}
    return make_wheel(tmp_path / filename, members, mode=modes)


def test_a_manylinux2014_wheel_is_replayed_for_its_pep600_platform(tmp_path: Path) -> None:
    wheel = platform_wheel(
        tmp_path,
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"],
        libs={"demo.libs/": b""},
    )
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    assert plan.repair == "manylinux_2_17_x86_64"
    origins = dict(plan.origins)
    assert "manylinux2014_x86_64" in origins["repair"]
    assert "WHEEL Tag: lines" in origins["repair"]
    assert "demo.libs/" in origins["repair"]
    assert any("auditwheel repair --plat manylinux_2_17_x86_64" in n for n in plan.notes)


def test_the_least_compatible_policy_is_the_one_auditwheel_was_asked_for(tmp_path: Path) -> None:
    # auditwheel repair --plat X tags X and its aliases, then adds the more compatible policy the
    # wheel also satisfies (unless --only-plat): asked for 2_28, it wrote 2_5, manylinux1, 2_28.
    wheel = platform_wheel(
        tmp_path,
        "demo-1.0-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_28_x86_64.whl",
        ["cp311-cp311-manylinux_2_28_x86_64", "cp311-cp311-manylinux1_x86_64"],
    )
    assert plan_build(wheel, upload_time=None, images=IMAGES).repair == "manylinux_2_28_x86_64"


def test_the_wheel_file_tags_count_when_the_filename_says_less(tmp_path: Path) -> None:
    # A renamed wheel: its WHEEL file still says what auditwheel wrote.
    wheel = platform_wheel(
        tmp_path, "demo-1.0-cp311-cp311-linux_x86_64.whl", ["cp311-cp311-manylinux_2_28_x86_64"]
    )
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    assert plan.repair == "manylinux_2_28_x86_64"


@pytest.mark.parametrize(
    ("filename", "tags", "generator"),
    [
        ("demo-1.0-py3-none-any.whl", ["py3-none-any"], "bdist_wheel (0.42.0)"),
        ("demo-1.0-cp311-cp311-linux_x86_64.whl", ["cp311-cp311-linux_x86_64"], "meson"),
        (
            "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            ["cp311-cp311-manylinux_2_17_x86_64"],
            "maturin (1.4.0)",
        ),
    ],
)
def test_nothing_is_repaired_without_evidence_of_auditwheel(
    tmp_path: Path, filename: str, tags: list[str], generator: str
) -> None:
    plan = plan_build(
        platform_wheel(tmp_path, filename, tags, generator=generator),
        upload_time=None,
        images=IMAGES,
    )
    assert plan.repair is None
    assert "repair" not in dict(plan.origins)
    assert "auditwheel" not in requirements_to_resolve(("setuptools",), "setuptools", plan)
    assert "auditwheel" not in build_script(plan, "demo-1.0")


def test_a_libs_directory_without_a_manylinux_tag_is_a_note(tmp_path: Path) -> None:
    wheel = platform_wheel(
        tmp_path,
        "demo-1.0-cp311-cp311-linux_x86_64.whl",
        ["cp311-cp311-linux_x86_64"],
        libs={"demo.libs/libz-0123abcd.so.1.2.13": b"\x7fELF"},
    )
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    assert plan.repair is None
    assert any("demo.libs/" in n and "not replayed" in n for n in plan.notes)


def test_a_planned_repair_resolves_auditwheel_and_runs_it_after_the_build(tmp_path: Path) -> None:
    wheel = platform_wheel(
        tmp_path,
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        ["cp311-cp311-manylinux_2_17_x86_64"],
    )
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    wanted = requirements_to_resolve(("setuptools",), "setuptools", plan)
    assert wanted.count("auditwheel") == 1
    script = build_script(plan, "demo-1.0").splitlines()
    build_at = next(i for i, line in enumerate(script) if " build --wheel " in line)
    repair_at = next(i for i, line in enumerate(script) if "auditwheel repair" in line)
    assert build_at < repair_at
    assert "--plat manylinux_2_17_x86_64 -w /out/repaired /out/*.whl" in script[repair_at]
    # Installed offline, pinned by the same constraints as the build requirements.
    install = next(line for line in script if " pip install " in line)
    assert "--constraint /inputs/constraints.txt auditwheel" in install


def test_the_repair_outcome_is_read_from_what_the_step_left(tmp_path: Path) -> None:
    wheel = platform_wheel(
        tmp_path,
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        ["cp311-cp311-manylinux_2_17_x86_64"],
    )
    plan = plan_build(wheel, upload_time=None, images=IMAGES)
    out = tmp_path / "out"
    out.mkdir()
    (out / REPAIR_LOG).write_text("INFO: Fixed-up wheel written to /out/repaired/x.whl\n")
    assert repair_outcome(plan, out) == RepairOutcome("manylinux_2_17_x86_64", replayed=True)
    refusal = (
        'auditwheel: error: cannot repair "demo.whl" to "manylinux_2_17_x86_64" ABI because of '
        "the presence of too-recent versioned symbols."
    )
    (out / REPAIR_LOG).write_text("x" * 40_000 + f"\nusage: auditwheel [-h]\n{refusal}\n\n")
    (out / REPAIR_REFUSED).write_text("refused\n")
    outcome = repair_outcome(plan, out)
    assert outcome == RepairOutcome("manylinux_2_17_x86_64", replayed=False, reason=refusal)
