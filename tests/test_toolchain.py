"""Choosing the toolchain from what the published objects say: producer, .comment, image history."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from compare.wheels import BASE, make_wheel
from helpers_index import file_entry, json_reply, local_server, project_page
from packaging import tags

from rebuild import toolchain
from rebuild.build import container_environment
from rebuild.errors import PlanError
from rebuild.index import IndexClient, wheel_choice_note
from rebuild.models import Target, ToolchainEvidence, ToolchainMatch, WheelSelector
from rebuild.plan import plan_build
from rebuild.toolchain import Compiler, ImageCompiler, ObjectFacts

# What MarkupSafe 2.1.5's published cp39 manylinux2014 extension says of itself.
RED_HAT_PRODUCER = (
    "GNU C17 10.2.1 20210130 (Red Hat 10.2.1-11) -mtune=generic -march=x86-64 -g -O3 -fwrapv -fPIC"
)
RED_HAT_COMMENT = "GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)"
CENTOS_CRT_COMMENT = "GCC: (GNU) 4.8.5 20150623 (Red Hat 4.8.5-44)"
MANYLINUX2014 = ("manylinux_2_17_x86_64", "manylinux2014_x86_64")
GCC10 = ImageCompiler(Compiler("gcc", "10.2.1", "20210110"), "gcc-10=10.2.1-6")
GCC12 = ImageCompiler(Compiler("gcc", "12.2.0"), "gcc-12=12.2.0-14+deb12u1")


def facts(*, comments: tuple[str, ...] = (), producers: tuple[str, ...] = ()) -> ObjectFacts:
    return ObjectFacts(member="pkg/_ext.so", comments=comments, producers=producers)


# ------------------------------------------------------------------------------------ parsing


def test_the_producer_names_release_snapshot_and_flags() -> None:
    producer = toolchain.parse_producer(RED_HAT_PRODUCER)
    assert producer is not None
    assert producer.language == "C17" and producer.is_c and not producer.is_cxx
    assert producer.compiler == Compiler("gcc", "10.2.1", "20210130")
    assert producer.flags == ("-mtune=generic", "-march=x86-64", "-g", "-O3", "-fwrapv", "-fPIC")


@pytest.mark.parametrize(
    ("text", "language", "version", "flags"),
    [
        ("GNU C++14 9.3.1 20200408 (Red Hat 9.3.1-2) -m64 -O2 -std=c++14", "C++14", "9.3.1", 3),
        ("GNU C11 12.2.0 -mtune=generic -march=x86-64 -g -O2", "C11", "12.2.0", 4),
        ("GNU C99 8.3.1 20190311 (Red Hat 8.3.1-3) [revision abc] -O3", "C99", "8.3.1", 1),
        ("GNU Fortran2008 10.2.1 20210130 (Red Hat 10.2.1-11) -O2", "Fortran2008", "10.2.1", 1),
        ("GNU AS 2.35.1", "AS", "2.35.1", 0),
    ],
)
def test_producers_of_other_languages_and_vendors(
    text: str, language: str, version: str, flags: int
) -> None:
    producer = toolchain.parse_producer(text)
    assert producer is not None
    assert (producer.language, producer.compiler.version, len(producer.flags)) == (
        language,
        version,
        flags,
    )


@pytest.mark.parametrize(
    ("text", "compiler"),
    [
        (RED_HAT_COMMENT, Compiler("gcc", "10.2.1", "20210130")),
        ("GCC: (Debian 10.2.1-6) 10.2.1 20210110", Compiler("gcc", "10.2.1", "20210110")),
        ("GCC: (Debian 12.2.0-14) 12.2.0", Compiler("gcc", "12.2.0")),
        ("clang version 14.0.6", Compiler("clang", "14.0.6")),
        ("Ubuntu clang version 14.0.0-1ubuntu1.1", Compiler("clang", "14.0.0")),
        ("Linker: LLD 14.0.6", None),
        ("GCC: (GNU) not-a-version", None),
        ("", None),
        ("GCC: (" + "(" * 5000, None),
    ],
)
def test_comments_name_the_compiler_or_nothing(text: str, compiler: Compiler | None) -> None:
    assert toolchain.parse_comment(text) == compiler


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GNU",
        "GNU C17",
        "GNU C17 ten",
        "gnu c17 10.2.1",
        "\x00\xff GNU C17 10.2.1",
        "G" * 100_000,
    ],
)
def test_odd_producers_are_not_parsed(text: str) -> None:
    assert toolchain.parse_producer(text) is None


@pytest.mark.parametrize(
    ("flag", "allowed"),
    [
        ("-O3", True),
        ("-Ofast", True),
        ("-g", True),
        ("-g2", True),
        ("-fwrapv", True),
        ("-fno-strict-aliasing", True),
        ("-fPIC", True),
        ("-fvisibility=hidden", True),
        ("-fcf-protection=none", True),
        ("-march=x86-64", True),
        ("-mtune=generic", True),
        ("-mavx2", True),
        ("-std=c99", True),
        ("-std=gnu++17", True),
        # Code, files, paths or the build machine's CPU: never replayed.
        ("-fplugin=/tmp/evil.so", False),
        ("-fplugin-arg-x=y", False),
        ("-specs=/tmp/evil.specs", False),
        ("-B/tmp", False),
        ("-wrapper", False),
        ("-fdump-tree-all", False),
        ("-fprofile-use", False),
        ("-fsanitize=address", False),
        ("-fdebug-prefix-map=/a=/b", False),
        ("-march=native", False),
        ("-mtune=native", False),
        ("-O3;id", False),
        ("-O3$(id)", False),
        ("-I/usr/include", False),
        ("-DX=1", False),
        ("--param=ssp-buffer-size=4", False),
        ("-fvisibility=../../x", False),
        ("-f" + "x" * 200, False),
        ("-fwrapv\n-fplugin", False),
    ],
)
def test_only_allowed_flags_are_replayable(flag: str, allowed: bool) -> None:
    assert toolchain.replayable(flag) is allowed


def test_a_hostile_producer_replays_only_allowed_flags_and_is_bounded() -> None:
    hostile = (
        "GNU C17 10.2.1 20210130 (Red Hat) -O3 -fplugin=/tmp/x.so -specs=/tmp/s "
        "-march=native $(reboot) -fwrapv " + "-mavx " * 10_000
    )
    published = toolchain.published_toolchain([facts(producers=(hostile,))])
    assert published.c_flags == ("-O3", "-fwrapv", "-mavx")
    assert "-fplugin=/tmp/x.so" in published.dropped and "-march=native" in published.dropped
    assert len(published.source) <= toolchain.MAX_TEXT + 1
    chosen = toolchain.choose(published, "bullseye-py39", GCC10)
    cflags = dict(chosen.environment)["CFLAGS"]
    assert "plugin" not in cflags and "native" not in cflags and "$" not in cflags


def test_control_characters_of_the_evidence_are_not_kept() -> None:
    published = toolchain.published_toolchain(
        [facts(producers=("GNU C17 10.2.1 -O3 \x1b[31mred\x1b[0m",))]
    )
    assert "\x1b" not in published.source


# ------------------------------------------------------------------------------------ evidence


def test_the_producer_wins_over_the_comment() -> None:
    published = toolchain.published_toolchain(
        [facts(comments=("GCC: (GNU) 9.3.1 20200408",), producers=(RED_HAT_PRODUCER,))],
        platforms=MANYLINUX2014,
    )
    assert published.evidence is ToolchainEvidence.PRODUCER
    assert published.compiler == Compiler("gcc", "10.2.1", "20210130")
    assert published.c_flags == (
        "-mtune=generic",
        "-march=x86-64",
        "-g",
        "-O3",
        "-fwrapv",
        "-fPIC",
    )
    assert published.source == RED_HAT_PRODUCER


def test_flags_only_some_units_have_are_not_replayed() -> None:
    base = "GNU C17 10.2.1 20210130 (Red Hat 10.2.1-11) -O3 -fwrapv"
    published = toolchain.published_toolchain(
        [
            facts(producers=(base, f"{base} -mavx2 -mfma", "GNU AS 2.35.1")),
            facts(producers=("GNU C++14 10.2.1 20210130 (Red Hat 10.2.1-11) -O2 -std=c++14",)),
        ]
    )
    assert published.c_flags == ("-O3", "-fwrapv")
    assert published.cxx_flags == ("-O2", "-std=c++14")
    assert any("-mavx2" in note for note in published.notes)


def test_of_the_comments_the_newest_gcc_is_the_projects() -> None:
    # manylinux2014's crti.o comes from CentOS 7's GCC 4.8.5; the extension from devtoolset's.
    published = toolchain.published_toolchain(
        [facts(comments=(CENTOS_CRT_COMMENT, RED_HAT_COMMENT))], platforms=MANYLINUX2014
    )
    assert published.evidence is ToolchainEvidence.COMMENT
    assert published.compiler == Compiler("gcc", "10.2.1", "20210130")
    assert published.c_flags == toolchain.MANYLINUX_PYTHON_FLAGS


def test_clang_objects_linked_with_gccs_runtime_are_clangs() -> None:
    published = toolchain.published_toolchain(
        [facts(comments=(RED_HAT_COMMENT, "clang version 17.0.6"))]
    )
    assert published.compiler == Compiler("clang", "17.0.6")
    assert published.c_flags == ()


@pytest.mark.parametrize(
    ("platforms", "uploaded", "version"),
    [
        (MANYLINUX2014, datetime(2021, 7, 31, tzinfo=UTC), "9.3.1"),
        (MANYLINUX2014, datetime(2021, 8, 1, tzinfo=UTC), "10.2.1"),
        (
            ("manylinux_2_5_x86_64", "manylinux1_x86_64", *MANYLINUX2014),
            datetime(2023, 1, 1, tzinfo=UTC),
            "10.2.1",
        ),
        (("manylinux_2_28_x86_64",), datetime(2022, 6, 1, tzinfo=UTC), "11"),
        (("manylinux_2_28_x86_64",), datetime(2023, 1, 1, tzinfo=UTC), "12.2.1"),
        (("manylinux_2_28_x86_64",), datetime(2024, 11, 10, tzinfo=UTC), "13"),
        (("manylinux_2_28_x86_64",), datetime(2025, 1, 1, tzinfo=UTC), "14.2.1"),
        (("manylinux_2_34_x86_64",), datetime(2025, 1, 1, tzinfo=UTC), "14.2.1"),
    ],
)
def test_stripped_objects_fall_back_on_the_image_history(
    platforms: tuple[str, ...], uploaded: datetime, version: str
) -> None:
    published = toolchain.published_toolchain([facts()], platforms=platforms, upload_time=uploaded)
    assert published.evidence is ToolchainEvidence.IMAGE_HISTORY
    assert published.compiler == Compiler("gcc", version)
    assert published.c_flags == toolchain.MANYLINUX_PYTHON_FLAGS


@pytest.mark.parametrize(
    ("platforms", "uploaded"),
    [
        (MANYLINUX2014, None),
        (("linux_x86_64",), datetime(2024, 1, 1, tzinfo=UTC)),
        (("manylinux_2_28_x86_64",), datetime(2022, 1, 1, tzinfo=UTC)),  # before the image
        (("musllinux_1_1_x86_64",), datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_without_evidence_nothing_is_claimed(
    platforms: tuple[str, ...], uploaded: datetime | None
) -> None:
    published = toolchain.published_toolchain([facts()], platforms=platforms, upload_time=uploaded)
    assert published.evidence is ToolchainEvidence.NONE and published.compiler is None
    assert toolchain.choose(published, "bookworm-py311", GCC12).match is ToolchainMatch.NONE


# ---------------------------------------------------------------------------------- the images


def test_the_image_compiler_is_read_from_its_lock() -> None:
    bullseye = ("gcc-10=10.2.1-6", "gcc-9-base=9.3.0-22", "gcc=4:10.2.1-1", "python3=3.9.2-3")
    assert toolchain.compiler_from_lock(bullseye) == GCC10
    assert toolchain.compiler_from_lock(("gcc-12=12.2.0-14+deb12u1", "gcc=4:12.2.0-3")) == GCC12
    assert toolchain.compiler_from_lock(("python3=3.9.2-3",)) is None
    assert toolchain.compiler_from_lock(("gcc=junk",)) is None


def test_the_repository_images_have_their_suites_compilers() -> None:
    found = toolchain.image_compilers(["bookworm-py311", "bullseye-py39", "no-such-image"])
    assert found["bullseye-py39"] == GCC10
    assert found["bookworm-py311"] is not None
    assert found["bookworm-py311"].compiler.version == "12.2.0"
    assert found["no-such-image"] is None


def test_trixie_s_gcc_14_matches_gcc_toolset_14_by_major_minor() -> None:
    # manylinux_2_28 (since 2024-12-17) and manylinux_2_34 build with gcc-toolset-14's 14.2.1.
    trixie = toolchain.image_compilers(["trixie-py313"])["trixie-py313"]
    assert trixie is not None and trixie.compiler.version == "14.2.0"
    level = toolchain.match(Compiler("gcc", "14.2.1"), trixie.compiler)
    assert level is ToolchainMatch.MAJOR_MINOR


@pytest.mark.parametrize(
    ("published", "image", "level"),
    [
        (Compiler("gcc", "10.2.1", "20210130"), GCC10.compiler, ToolchainMatch.EXACT),
        (Compiler("gcc", "12.2.1"), GCC12.compiler, ToolchainMatch.MAJOR_MINOR),
        (Compiler("gcc", "10.2.1"), GCC12.compiler, ToolchainMatch.NONE),
        (Compiler("gcc", "11"), Compiler("gcc", "11.3.0"), ToolchainMatch.NONE),
        (Compiler("clang", "12.2.0"), GCC12.compiler, ToolchainMatch.NONE),
        (None, GCC12.compiler, ToolchainMatch.NONE),
    ],
)
def test_match_levels(published: Compiler | None, image: Compiler, level: ToolchainMatch) -> None:
    assert toolchain.match(published, image) is level


def test_a_matched_image_gets_the_flags_and_debians_defaults_undone() -> None:
    published = toolchain.published_toolchain(
        [facts(producers=(RED_HAT_PRODUCER,))], platforms=MANYLINUX2014
    )
    chosen = toolchain.choose(published, "bullseye-py39", GCC10)
    assert chosen.match is ToolchainMatch.EXACT
    assert chosen.evidence is ToolchainEvidence.PRODUCER
    assert (chosen.published, chosen.rebuilt) == ("gcc 10.2.1", "gcc 10.2.1")
    assert chosen.undone == toolchain.DEBIAN_UNDO
    assert dict(chosen.environment)["CFLAGS"] == (
        "-mtune=generic -march=x86-64 -g -O3 -fwrapv -fPIC "
        "-fno-stack-protector -Wp,-U_FORTIFY_SOURCE -fcf-protection=none"
    )
    assert any("20210130" in note and "20210110" in note for note in chosen.notes)


def test_an_unmatched_image_gets_no_flags_and_says_so() -> None:
    published = toolchain.published_toolchain([facts(producers=(RED_HAT_PRODUCER,))])
    chosen = toolchain.choose(published, "bookworm-py311", GCC12)
    assert chosen.match is ToolchainMatch.NONE
    assert chosen.environment == () and chosen.replayed == ()
    assert any("at best be attributed" in note for note in chosen.notes)


def test_of_images_with_the_interpreter_the_matched_compiler_is_chosen() -> None:
    published = toolchain.published_toolchain([facts(producers=(RED_HAT_PRODUCER,))])
    compilers = {"a-py39": GCC12, "b-py39": GCC10, "c-py39": None}
    assert toolchain.best_image(published, ["a-py39", "b-py39", "c-py39"], compilers) == "b-py39"
    unknown = toolchain.published_toolchain([])
    assert toolchain.best_image(unknown, ["a-py39", "b-py39"], compilers) == "a-py39"


# ------------------------------------------------------------------------------- plan and build

C_SOURCE = "int answer(int x) { switch (x) { case 1: return 3; case 2: return 5; } return x; }\n"


def compiled_extension(tmp_path: Path) -> bytes:
    source = tmp_path / "ext.c"
    source.write_text(C_SOURCE, encoding="utf-8")
    out = tmp_path / "ext.so"
    subprocess.run(
        ["gcc", "-O3", "-g", "-fwrapv", "-fPIC", "-shared", str(source), "-o", str(out)],
        check=True,
    )
    return out.read_bytes()


def compiled_wheel(tmp_path: Path, tag: str) -> Path:
    so = compiled_extension(tmp_path)
    wheel_file = BASE["demo-1.0.dist-info/WHEEL"].replace(
        b"Root-Is-Purelib: true", b"Root-Is-Purelib: false"
    )
    wheel_file = wheel_file.replace(b"Tag: py3-none-any", f"Tag: {tag}".encode())
    return make_wheel(
        tmp_path / f"demo-1.0-{tag}.whl",
        changes={
            "demo/_ext.cpython-39-x86_64-linux-gnu.so": so,
            "demo-1.0.dist-info/WHEEL": wheel_file,
        },
    )


def host_gcc(so: bytes) -> Compiler:
    from rebuild.compare.elf_read import read_elf

    producer = toolchain.parse_producer(read_elf(so).producers[0])
    assert producer is not None
    return producer.compiler


def test_the_plan_picks_the_image_whose_compiler_built_the_wheel(tmp_path: Path) -> None:
    wheel = compiled_wheel(tmp_path, "cp39-cp39-manylinux_2_17_x86_64")
    objects = toolchain.read_objects(wheel)
    assert [o.member for o in objects] == ["demo/_ext.cpython-39-x86_64-linux-gnu.so"]
    gcc = host_gcc((tmp_path / "ext.so").read_bytes())
    images = {"a-py39": "3.9", "b-py39": "3.9", "bookworm-py311": "3.11"}
    compilers = {
        "a-py39": ImageCompiler(Compiler("gcc", "4.9.0"), "gcc-4.9=4.9.0-1"),
        "b-py39": ImageCompiler(gcc, f"gcc-x={gcc.version}-1"),
        "bookworm-py311": GCC12,
    }
    plan = plan_build(
        wheel,
        upload_time=datetime(2024, 2, 2, tzinfo=UTC),
        images=images,
        compilers=compilers,
    )
    assert plan.image == "b-py39" and plan.python == "3.9"
    assert plan.toolchain is not None
    assert plan.toolchain.match is ToolchainMatch.EXACT
    assert plan.toolchain.evidence is ToolchainEvidence.PRODUCER
    assert {"-O3", "-fwrapv", "-g", "-fPIC"} <= set(plan.toolchain.replayed)
    assert dict(plan.origins)["toolchain"].startswith("dw_at_producer: GNU C")
    assert any(note.startswith("compiler matched (exact") for note in plan.notes)
    assert not any("toolchain divergence" in note for note in plan.notes)
    environment = container_environment(plan)
    assert environment["CFLAGS"].endswith(
        "-fno-stack-protector -Wp,-U_FORTIFY_SOURCE -fcf-protection=none"
    )
    assert "-O3" in environment["CFLAGS"].split()


def test_an_unmatched_plan_records_both_compilers_and_replays_nothing(tmp_path: Path) -> None:
    wheel = compiled_wheel(tmp_path, "cp39-cp39-manylinux_2_17_x86_64")
    plan = plan_build(
        wheel,
        upload_time=None,
        images={"a-py39": "3.9"},
        compilers={"a-py39": ImageCompiler(Compiler("gcc", "4.9.0"), "gcc-4.9=4.9.0-1")},
    )
    assert plan.toolchain is not None and plan.toolchain.match is ToolchainMatch.NONE
    assert "CFLAGS" not in container_environment(plan)
    assert any(note.startswith("compiler not matched: published gcc") for note in plan.notes)


def test_recipe_flags_come_after_the_replayed_ones(tmp_path: Path) -> None:
    from dataclasses import replace

    wheel = compiled_wheel(tmp_path, "cp39-cp39-manylinux_2_17_x86_64")
    gcc = host_gcc((tmp_path / "ext.so").read_bytes())
    plan = plan_build(
        wheel,
        upload_time=None,
        images={"b-py39": "3.9"},
        compilers={"b-py39": ImageCompiler(gcc, "gcc-x=1")},
    )
    plan = replace(plan, environment=(("CFLAGS", "-fno-strict-aliasing"), ("OTHER", "1")))
    environment = container_environment(plan)
    assert environment["CFLAGS"].endswith("-fcf-protection=none -fno-strict-aliasing")
    assert environment["OTHER"] == "1"


@pytest.mark.parametrize("python", ["3.10", "3.12"])
def test_pythons_in_no_debian_suite_are_a_plain_plan_error(tmp_path: Path, python: str) -> None:
    tag = f"cp{python.replace('.', '')}"
    wheel = make_wheel(tmp_path / f"demo-1.0-{tag}-{tag}-manylinux_2_17_x86_64.whl")
    with pytest.raises(PlanError, match=f"CPython {python} is in no Debian suite"):
        plan_build(wheel, upload_time=None, images={"bookworm-py311": "3.11"}, compilers={})


# ------------------------------------------------------------------- the wheel, with no --python


def test_without_python_the_newest_rebuildable_wheel_is_chosen_and_said() -> None:
    here = f"cp{tags.interpreter_version()}"
    names = (
        f"pkg-1.0-{here}-{here}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pkg-1.0-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pkg-1.0-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    )
    with local_server() as server:
        files = [file_entry(server, n, n.encode()) for n in (*names, "pkg-1.0.tar.gz")]
        server.route("/simple/pkg/", json_reply(project_page("pkg", files, ["1.0"])))
        target = Target.parse("pkg==1.0")
        url = server.url("/simple/")
        mine = IndexClient(
            url,
            buildable=frozenset(
                {"3.9", tags.interpreter_version()[0] + "." + tags.interpreter_version()[1:]}
            ),
        )
        release = mine.resolve(target, WheelSelector())
        assert release.wheel is not None and release.wheel.filename == names[0]
        assert wheel_choice_note(release) is None
        others = IndexClient(url, buildable=frozenset({"3.8", "3.9"}))
        release = others.resolve(target, WheelSelector())
        assert release.wheel is not None and release.wheel.filename == names[1]
        note = wheel_choice_note(release)
        assert note is not None and "CPython 3.9 instead" in note
        # An explicit --python is obeyed as before.
        asked = others.resolve(target, WheelSelector(python="3.8"))
        assert asked.wheel is not None and asked.wheel.filename == names[2]
        assert wheel_choice_note(asked) is None


@pytest.mark.parametrize(
    "data", [b"\x7fELF", b"\x7fELF" + b"\xff" * 4096, b"\x7fELF\x02\x01\x01" + b"\x00" * 57]
)
def test_broken_objects_in_the_wheel_name_no_compiler(tmp_path: Path, data: bytes) -> None:
    wheel = make_wheel(
        tmp_path / "demo-1.0-cp39-cp39-manylinux_2_17_x86_64.whl", changes={"demo/_x.so": data}
    )
    assert toolchain.read_objects(wheel) == ()


def test_a_recipe_fallback_without_the_published_compiler_says_which_image_has_it(
    tmp_path: Path,
) -> None:
    from rebuild.recipes import load_recipe

    wheel = compiled_wheel(tmp_path, "cp39-cp39-manylinux_2_17_x86_64")
    gcc = host_gcc((tmp_path / "ext.so").read_bytes())
    recipe_path = tmp_path / "demo.toml"
    recipe_path.write_text(
        'schema = 1\nproject = "demo"\nupstream = "https://example.org/demo"\n\n'
        '[[release]]\nversions = ">=1"\nupstream = "its CI"\n\n'
        '[release.image]\nreference = "quay.io/pypa/manylinux2014_x86_64"\ndigest = ""\n'
        'fallback = "a-py39"\n',
        encoding="utf-8",
    )
    plan = plan_build(
        wheel,
        upload_time=None,
        images={"a-py39": "3.9", "b-py39": "3.9"},
        compilers={
            "a-py39": ImageCompiler(Compiler("gcc", "4.9.0"), "gcc-4.9=4.9.0-1"),
            "b-py39": ImageCompiler(gcc, "gcc-x=1"),
        },
        recipe=load_recipe(recipe_path),
        version="1.0",
    )
    assert plan.image == "a-py39"
    assert any(
        note.startswith("b-py39 has the published compiler, but the recipe names a-py39")
        for note in plan.notes
    ), plan.notes


# ------------------------------------------------------------------------------- C++ string ABI

KIWI_PRODUCER = "GNU C++11 10.2.1 20210130 (Red Hat 10.2.1-11) -mtune=generic -march=x86-64 -g -O3"


@pytest.mark.parametrize(
    ("names", "abi"),
    [
        # kiwisolver 1.5.1's manylinux2014 extension: devtoolset's g++, the pre-C++11 ABI.
        (("_ZNKSs7compareEPKc", "_ZNSs4_Rep10_M_destroyERKSaIcE", "PyInit__cext"), "old"),
        (("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm",), "new"),
        # Both: a C++11 name decides (the old ones may come from a library linked in).
        (("_ZNSs4_Rep10_M_destroyERKSaIcE", "_ZNKSt7__cxx1112basic_stringIcS"), "new"),
        (("PyInit__ext", "memcpy"), None),
    ],
)
def test_the_string_abi_is_read_off_the_symbol_names(
    names: tuple[str, ...], abi: str | None
) -> None:
    assert toolchain.string_abi(names) == abi


def _cxx(member: str, abi: str | None) -> ObjectFacts:
    return ObjectFacts(member=member, comments=(), producers=(KIWI_PRODUCER,), cxx_abi=abi)


def test_objects_of_the_old_string_abi_are_rebuilt_with_it() -> None:
    published = toolchain.published_toolchain(
        [_cxx("kiwisolver/_cext.so", "old"), _cxx("kiwisolver/_c.so", None)]
    )
    assert published.cxx_defines == ("-D_GLIBCXX_USE_CXX11_ABI=0",)
    assert any("pre-C++11 string ABI" in note for note in published.notes)
    chosen = toolchain.choose(published, "bullseye-py39", GCC10)
    environment = dict(chosen.environment)
    assert "-D_GLIBCXX_USE_CXX11_ABI=0" in environment["CXXFLAGS"].split()
    assert "_GLIBCXX" not in environment["CFLAGS"]
    # Under another compiler nothing is replayed, the define neither.
    assert toolchain.choose(published, "bookworm-py311", GCC12).environment == ()


@pytest.mark.parametrize("abis", [("old", "new"), ("new",), (None,)])
def test_any_sign_of_the_new_abi_or_none_at_all_replays_nothing(
    abis: tuple[str | None, ...],
) -> None:
    published = toolchain.published_toolchain(
        [_cxx(f"pkg/_{i}.so", abi) for i, abi in enumerate(abis)]
    )
    assert published.cxx_defines == ()
