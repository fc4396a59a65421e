"""Recipes: the schema and its errors, section matching, planning and building with a recipe,
and expected divergences matched by member and kind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_plan_repair import platform_wheel

from rebuild.build import build_script, container_environment, requirements_to_resolve
from rebuild.compare.rules import explain_expected
from rebuild.errors import PlanError, UsageError
from rebuild.models import (
    Comparison,
    Divergence,
    DivergenceKind,
    ExpectedDivergence,
    Finding,
    Origin,
    Reason,
    Verdict,
    WheelInfo,
)
from rebuild.pipeline import validate_recipes
from rebuild.plan import plan_build
from rebuild.recipes import find_recipe, load_recipe, recipe_paths

IMAGES = {"bookworm-py311": "3.11", "bookworm-py311-numeric": "3.11"}
REPO_RECIPES = Path(__file__).resolve().parent.parent / "recipes"

GOOD = """
schema = 1
project = "Demo"

[[release]]
versions = ">=1.0,<2"
wheel_tags = ["cp311-cp311-manylinux*_x86_64"]
build_requirements = ["Cython==3.0.8"]
pre_build = ["echo before"]
source_dir = "/project"

[release.image]
reference = "quay.io/pypa/manylinux2014_x86_64"
digest = ""
fallback = "bookworm-py311-numeric"

[release.config_settings]
setup-args = ["-Da=1", "-Db=2"]
builddir = "out"

[release.environment]
CFLAGS = "-O2"

[release.repair]
auditwheel = "5.4.0"
plat = "manylinux2014_x86_64"

[[release.expected]]
member = "demo/build-info.txt"
kind = "content"
reason = "an object id"
link = "https://example.org/issue/1"

[[release]]
versions = ">=2"
"""


def write(tmp_path: Path, text: str, name: str = "demo.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def manylinux_wheel(tmp_path: Path, version: str = "1.0") -> Path:
    return platform_wheel(
        tmp_path,
        f"demo-{version}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ["cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"],
    )


# --- the schema -------------------------------------------------------------------------------


def test_a_valid_recipe_loads_with_every_field(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    first, second = recipe.releases
    assert first.config_settings == (
        ("setup-args", "-Da=1"),
        ("setup-args", "-Db=2"),
        ("builddir", "out"),
    )
    assert first.image is not None and first.image.fallback == "bookworm-py311-numeric"
    assert first.repair is not None and first.repair.auditwheel == "5.4.0"
    assert first.expected[0].kind is DivergenceKind.CONTENT
    assert second.wheel_tags == ("*",)  # no tags: every wheel of those versions


def test_a_source_dir_may_be_a_tree_below_a_new_top_level_directory(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('source_dir = "/project"', 'source_dir = "/project/demo"'))
    assert load_recipe(path).releases[0].source_dir == "/project/demo"


@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        (("schema = 1", "schema = 2"), "field schema", "allowed: 1"),
        (('versions = ">=1.0,<2"', 'versions = "one"'), "release[1].versions", "PEP 440"),
        (('wheel_tags = ["cp311', 'wheel_tags = ["cp311-'), "release[1].wheel_tags", "globs"),
        (('"Cython==3.0.8"', '"Cython>=3"'), "release[1].build_requirements", "exact pins"),
        (('CFLAGS = "-O2"', 'UV_OFFLINE = "0"'), "release[1].environment.UV_OFFLINE", "any other"),
        (('CFLAGS = "-O2"', "CFLAGS = 2"), "release[1].environment.CFLAGS", "must be a string"),
        (('digest = ""', 'digest = "latest"'), "release[1].image.digest", "sha256:<64 hex>"),
        (('plat = "manylinux2014_x86_64"', 'plat = "linux"'), "release[1].repair.plat", "policy"),
        (('kind = "content"', 'kind = "everything"'), "release[1].expected[1].kind", "content"),
        (('member = "demo/build-info.txt"', 'member = "**"'), "expected[1].member", "not every"),
        (('link = "https://example.org/issue/1"', 'link = "see chat"'), "expected[1].link", "URL"),
        (("pre_build =", "pre_builds ="), "field release[1].pre_builds", "allowed here:"),
        (('source_dir = "/project"', 'source_dir = "/usr"'), "release[1].source_dir", "/project"),
        (('source_dir = "/project"', 'source_dir = "/usr/x"'), "release[1].source_dir", "/project"),
        (('source_dir = "/project"', 'source_dir = "/a/../etc"'), "release[1].source_dir", "/proj"),
        (('source_dir = "/project"', 'source_dir = "/a/./b"'), "release[1].source_dir", "/project"),
        (('source_dir = "/project"', 'source_dir = "/a/b/c/d"'), "release[1].source_dir", "/proj"),
        (('source_dir = "/project"', 'source_dir = "/a/b/"'), "release[1].source_dir", "/project"),
        (('source_dir = "/project"', 'source_dir = "/.."'), "release[1].source_dir", "/project"),
        (('source_dir = "/project"', 'source_dir = "x"'), "release[1].source_dir", "top-level"),
    ],
)
def test_a_bad_field_is_named_with_what_is_allowed(
    tmp_path: Path, change: tuple[str, str], field: str, allowed: str
) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(PlanError) as caught:
        load_recipe(path)
    message = caught.value.message
    assert str(path) in message
    assert field in message
    assert allowed in message


def test_an_expected_divergence_without_a_kind_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('kind = "content"\n', ""))
    with pytest.raises(PlanError, match=r"release\[1\]\.expected\[1\]\.kind is missing"):
        load_recipe(path)


def test_elf_aspects_are_checked_and_only_for_content(tmp_path: Path) -> None:
    bad_aspect = GOOD.replace('kind = "content"', 'kind = "content"\naspects = ["colour"]')
    with pytest.raises(PlanError, match="has 'colour'; allowed: build-id"):
        load_recipe(write(tmp_path, bad_aspect))
    wrong_kind = GOOD.replace('kind = "content"', 'kind = "timestamp"\naspects = ["code"]')
    with pytest.raises(PlanError, match="only with kind = 'content'"):
        load_recipe(write(tmp_path, wrong_kind))


def test_expected_lines_must_be_a_regular_expression_on_a_text_diff(tmp_path: Path) -> None:
    lines = GOOD.replace('kind = "content"', 'kind = "content"\nlines = "dep\\\\d+"')
    (expected,) = load_recipe(write(tmp_path, lines)).releases[0].expected
    assert expected.lines == "dep\\d+"
    broken = GOOD.replace('kind = "content"', 'kind = "content"\nlines = "dep("')
    with pytest.raises(PlanError, match=r"expected\[1\]\.lines is not a regular expression"):
        load_recipe(write(tmp_path, broken))
    with_aspects = GOOD.replace(
        'kind = "content"', 'kind = "content"\nlines = "x"\naspects = ["code"]'
    )
    with pytest.raises(PlanError, match="no aspects"):
        load_recipe(write(tmp_path, with_aspects))


EXPECTED = """
schema = 1
project = "Demo"

[[release]]
versions = ">=1"

[[release.expected]]
member = {member!r}
kind = "content"
reason = "a reason"
link = "https://example.org/issue/1"
{extra}
"""


def expectation(tmp_path: Path, member: str, extra: str = "") -> Path:
    return write(tmp_path, EXPECTED.format(member=member, extra=extra))


@pytest.mark.parametrize("member", ["*.so", "[!~]*", "*.*", "*", "*/x.txt", "demo*/x.txt"])
def test_a_member_glob_needs_a_literal_directory_before_any_wildcard(
    tmp_path: Path, member: str
) -> None:
    path = expectation(tmp_path, member, "lines = 'x=1'")
    with pytest.raises(PlanError) as caught:
        load_recipe(path)
    message = caught.value.message
    assert str(path) in message and "release[1].expected[1].member" in message
    assert "literal directory" in message or "not every member" in message
    assert caught.value.hint


@pytest.mark.parametrize(
    "member", ["numpy/core/*.so", "demo/build-info.txt", "demo/sub/*.txt", "setup.cfg"]
)
def test_a_glob_with_a_literal_directory_or_an_exact_name_is_allowed(
    tmp_path: Path, member: str
) -> None:
    extra = "aspects = ['build-id']" if member.endswith(".so") else ""
    (expected,) = load_recipe(expectation(tmp_path, member, extra)).releases[0].expected
    assert expected.member == member


@pytest.mark.parametrize(
    "member",
    [
        "demo/_core.*.so",
        "demo/lib/libz.so.1.2.13",
        "demo/lib/*.so.*",
        "demo/*.a",
        "demo/__config__.py",
        "demo/*.pyi",
        "demo/*",
        "demo/*y",
        "demo/x.[ps][yo]",
    ],
)
def test_a_wholesale_expectation_on_compiled_code_or_python_source_is_refused(
    tmp_path: Path, member: str
) -> None:
    path = expectation(tmp_path, member)
    with pytest.raises(PlanError, match="neither aspects nor lines") as caught:
        load_recipe(path)
    assert str(path) in caught.value.message
    assert "release[1].expected[1].member" in caught.value.message
    # Narrowed, the same glob is accepted.
    extra = "aspects = ['build-id']" if "py" not in member else "lines = 'VERSION = \"1\"'"
    assert load_recipe(expectation(tmp_path, member, extra)).releases[0].expected


@pytest.mark.parametrize(
    "lines",
    [
        "(?s).*",
        ".*",
        ".+",
        "[\\s\\S]*",
        "x*",
        "(|x)",
        "[^\\n]+",
        "(?i)[ -~]+",
        ".{1,}",
        "\\S.*|.*\\S|}",
    ],
)
def test_a_catch_all_lines_pattern_is_refused(tmp_path: Path, lines: str) -> None:
    path = expectation(tmp_path, "demo/__config__.py", f"lines = '{lines}'")
    with pytest.raises(PlanError, match="matches any line") as caught:
        load_recipe(path)
    assert "release[1].expected[1].lines" in caught.value.message


def test_lines_must_compile(tmp_path: Path) -> None:
    path = expectation(tmp_path, "demo/__config__.py", "lines = '(unclosed'")
    with pytest.raises(PlanError, match=r"expected\[1\]\.lines is not a regular expression"):
        load_recipe(path)


def test_a_narrow_lines_pattern_is_allowed(tmp_path: Path) -> None:
    path = expectation(tmp_path, "demo/__config__.py", """lines = '\\s*"name": "dep\\d+",'""")
    (expected,) = load_recipe(path).releases[0].expected
    assert expected.lines == '\\s*"name": "dep\\d+",'


@pytest.mark.parametrize("opening", ["[", "{a="])
def test_deeply_nested_toml_is_a_usage_error_not_a_crash(tmp_path: Path, opening: str) -> None:
    closing = {"[": "]", "{a=": "}"}[opening]
    depth = 100_000
    path = write(tmp_path, f"x = {opening * depth}1{closing * depth}\n")
    with pytest.raises(UsageError, match="nests arrays or tables too deeply") as caught:
        load_recipe(path)
    assert caught.value.exit_code == 2
    assert str(path) in caught.value.message


def test_the_file_must_be_named_after_the_project(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"must be named after it: demo\.toml"):
        load_recipe(write(tmp_path, GOOD, "other.toml"))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "schema = = 1")
    with pytest.raises(PlanError, match="not valid TOML") as caught:
        load_recipe(path)
    assert str(path) in caught.value.message


# --- choosing a section -----------------------------------------------------------------------


def test_the_first_section_matching_version_and_tags_applies(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    tags = ("cp311-cp311-manylinux_2_17_x86_64",)
    assert recipe.select("1.5", tags) is recipe.releases[0]
    assert recipe.select("1.5", ("cp311-cp311-win_amd64",)) is None
    assert recipe.select("2.1", ("cp311-cp311-win_amd64",)) is recipe.releases[1]
    assert recipe.select("0.9", tags) is None


def test_recipes_are_found_by_normalised_project_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, GOOD)
    monkeypatch.setenv("REBUILD_RECIPES_DIR", str(tmp_path))
    found = find_recipe("DEMO")
    assert found is not None and found.project == "Demo"
    assert find_recipe("absent") is None


# --- planning and building with a recipe ------------------------------------------------------


def test_the_plan_takes_the_recipe_values_and_says_where_each_came_from(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    wheel = manylinux_wheel(tmp_path)
    plan = plan_build(wheel, upload_time=None, images=IMAGES, recipe=recipe, version="1.0")
    assert plan.recipe == str(recipe.path)
    assert plan.image == "bookworm-py311-numeric"
    assert plan.image_reference == "quay.io/pypa/manylinux2014_x86_64"
    assert plan.repair == "manylinux2014_x86_64"
    assert plan.requirements == ("Cython==3.0.8", "auditwheel==5.4.0")
    assert ("CFLAGS", "-O2") in plan.environment
    origins = dict(plan.origins)
    for field in ("config_settings", "environment", "requirements", "pre_build", "expected"):
        assert "demo.toml [[release]] 1" in origins[field]
    assert any("was NOT used" in n and "bookworm-py311-numeric" in n for n in plan.notes)
    # The inferred manylinux note is replaced by the recipe's own fallback statement.
    assert not any("was built in a manylinux image" in n for n in plan.notes)


def test_without_a_matching_section_the_plan_is_inferred_and_says_so(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    wheel = manylinux_wheel(tmp_path, "0.5")
    plan = plan_build(wheel, upload_time=None, images=IMAGES, recipe=recipe, version="0.5")
    assert plan.recipe is None
    assert plan.image == "bookworm-py311"
    assert any("has no [[release]] for 0.5" in n for n in plan.notes)


def test_a_fallback_image_that_is_not_defined_is_a_plan_error(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    wheel = manylinux_wheel(tmp_path)
    with pytest.raises(PlanError, match=r"image\.fallback names the image"):
        plan_build(
            wheel, upload_time=None, images={"bookworm-py311": "3.11"}, recipe=recipe, version="1"
        )


def test_the_build_applies_config_settings_pins_environment_and_pre_build(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    plan = plan_build(
        manylinux_wheel(tmp_path), upload_time=None, images=IMAGES, recipe=recipe, version="1.0"
    )
    script = build_script(plan, "demo-1.0")
    # Upstream's source path: the copy goes there, not to the default scratch path.
    assert "cp -R --preserve=mode,timestamps /inputs/source/. /project/" in script
    assert "cd /project\n" in script
    build_line = next(line for line in script.splitlines() if " build --wheel " in line)
    assert build_line.endswith(
        "--config-setting=setup-args=-Da=1 --config-setting=setup-args=-Db=2 "
        "--config-setting=builddir=out ."
    )
    assert script.index("echo before") < script.index(build_line)
    assert container_environment(plan)["CFLAGS"] == "-O2"
    wanted = requirements_to_resolve(("meson-python",), "mesonpy", plan)
    assert "Cython==3.0.8" in wanted and "auditwheel==5.4.0" in wanted


# --- expected divergences ---------------------------------------------------------------------


def comparison_of(*divergences: Divergence) -> Comparison:
    info = WheelInfo("demo.whl", "0" * 64, 1, 1)
    return Comparison(info, info, Verdict.DIVERGENT, divergences, identical_members=0)


CONFIG = ExpectedDivergence(
    member="demo/__config__.py",
    kind=DivergenceKind.CONTENT,
    reason="an object id",
    link="https://example.org/1",
)
SYMBOLS = ExpectedDivergence(
    member="demo/_core.*.so",
    kind=DivergenceKind.CONTENT,
    reason="random symbol names",
    link="https://example.org/2",
    aspects=("local-symbols",),
)


def test_an_expected_divergence_needs_its_member_and_its_kind() -> None:
    whole = replace(CONFIG, member="demo/build.json")
    content = Divergence(DivergenceKind.CONTENT, "differs", member="demo/build.json")
    only = Divergence(DivergenceKind.ONLY_PUBLISHED, "gone", member="demo/build.json")
    other = Divergence(DivergenceKind.CONTENT, "differs", member="demo/other.json")
    result = explain_expected(comparison_of(content, only, other), [whole])
    by_member_kind = {(d.member, d.kind): d for d in result.divergences}
    explained = by_member_kind[("demo/build.json", DivergenceKind.CONTENT)]
    assert explained.reasons == (
        Reason("recipe", "an object id", Origin.RECIPE, "https://example.org/1"),
    )
    assert not by_member_kind[("demo/build.json", DivergenceKind.ONLY_PUBLISHED)].explained
    assert not by_member_kind[("demo/other.json", DivergenceKind.CONTENT)].explained
    assert result.verdict is Verdict.DIVERGENT
    assert [d.explained for d in result.divergences] == [False, False, True]


def test_python_sources_and_compiled_members_are_never_explained_whole() -> None:
    source = Divergence(DivergenceKind.CONTENT, "differs", member="demo/__config__.py")
    compiled = Divergence(
        DivergenceKind.CONTENT, "elf", member="demo/_core.so", analyser="elf", aspects=("code",)
    )
    expected = [CONFIG, replace(CONFIG, member="demo/_core.so")]
    result = explain_expected(comparison_of(source, compiled), expected)
    assert not any(d.explained for d in result.divergences)


def test_a_grouped_container_row_is_matched_entry_by_entry() -> None:
    row = Divergence(
        DivergenceKind.EXTRA_FIELD,
        "extra field differs on 2 entries",
        member="demo/data.json",
        entries=("demo/data.json", "evil/other.json"),
    )
    expected = replace(CONFIG, member="demo/*.json", kind=DivergenceKind.EXTRA_FIELD)
    (kept,) = explain_expected(comparison_of(row), [expected]).divergences
    assert not kept.explained  # its first entry matches; the second does not


def test_elf_aspects_must_all_be_expected() -> None:
    member = "demo/_core.cpython-311-x86_64-linux-gnu.so"
    symbols_only = Divergence(
        DivergenceKind.CONTENT, "elf", member=member, aspects=("local-symbols",)
    )
    with_code = Divergence(
        DivergenceKind.CONTENT, "elf", member=member, aspects=("code", "local-symbols")
    )
    no_aspects = Divergence(DivergenceKind.CONTENT, "bytes", member=member)
    result = explain_expected(comparison_of(symbols_only, with_code, no_aspects), [SYMBOLS])
    explained = {d.aspects: d.explained for d in result.divergences}
    assert explained == {("local-symbols",): True, ("code", "local-symbols"): False, (): False}


def _text_divergence(*changed: str, truncated: bool = False) -> Divergence:
    diff = ["--- published/demo/__config__.py", "+++ rebuilt/demo/__config__.py", "@@ -1,3 +1,3 @@"]
    diff += [*changed, " unchanged context"]
    return Divergence(
        DivergenceKind.CONTENT,
        "content differs",
        member="demo/__config__.py",
        detail="\n".join(diff),
        analyser="text",
        # The text analyser keeps every changed line, or None when there were too many.
        changed_lines=None if truncated else changed,
    )


def test_expected_lines_explain_a_text_diff_only_when_every_changed_line_matches() -> None:
    dep = replace(CONFIG, lines=r'\s*"name": "dep\d+",')
    version = replace(CONFIG, reason="the compiler", lines=r'\s*"version": "[\d.]+",')
    both = _text_divergence(
        '-    "name": "dep1402",',
        '+    "name": "dep1396",',
        '-  "version": "10.2",',
        '+  "version": "12.2",',
    )
    (explained,) = explain_expected(comparison_of(both), [dep, version]).divergences
    assert [r.text for r in explained.reasons] == ["an object id", "the compiler"]
    # A line that only contains what the expression names is not one it names in full.
    tail = _text_divergence('+    "name": "dep1", __import__("os").system("id")')
    (kept,) = explain_expected(comparison_of(tail), [dep]).divergences
    assert not kept.explained
    # A removed line that looks like a diff header is still a changed line.
    header = _text_divergence('-    "name": "dep1402",', '--- __import__("os").system("id")')
    (kept,) = explain_expected(comparison_of(header), [dep]).divergences
    assert not kept.explained
    # One changed line no expectation names: the whole member stays for the reviewer.
    injected = _text_divergence('-    "name": "dep1402",', '+    "name": "dep1396",', "+import os")
    (kept,) = explain_expected(comparison_of(injected), [dep, version]).divergences
    assert not kept.explained
    # A diff cut short cannot be vouched for, whatever its visible lines say.
    cut = _text_divergence('-    "name": "dep1402",', '+    "name": "dep1396",', truncated=True)
    (kept,) = explain_expected(comparison_of(cut), [dep]).divergences
    assert not kept.explained


def test_expectations_on_one_member_cover_its_elf_aspects_together() -> None:
    member = "demo/_core.cpython-311-x86_64-linux-gnu.so"
    exports = replace(SYMBOLS, reason="dispatch targets", aspects=("exports",))
    d = Divergence(
        DivergenceKind.CONTENT,
        "elf",
        member=member,
        aspects=("exports", "local-symbols"),
        reasons=(Reason("elf-build-paths", "build paths"),),
    )
    (one,) = explain_expected(comparison_of(d), [SYMBOLS]).divergences
    assert not one.explained
    (together,) = explain_expected(comparison_of(d), [SYMBOLS, exports]).divergences
    # The built-in rules' part comes first, then each expectation that took part.
    assert [r.text for r in together.reasons] == [
        "build paths",
        "random symbol names",
        "dispatch targets",
    ]
    assert together.rules == ("elf-build-paths", "recipe", "recipe")


def test_expected_symbols_narrow_an_exports_expectation_to_those_symbols() -> None:
    member = "demo/_core.cpython-311-x86_64-linux-gnu.so"
    kernels = replace(
        SYMBOLS, reason="dispatch targets", aspects=("exports",), symbols=("kernel_AVX512_*",)
    )

    def exporting(*symbols: str) -> Divergence:
        return Divergence(
            DivergenceKind.CONTENT, "elf", member=member, aspects=("exports",), symbols=symbols
        )

    (known,) = explain_expected(
        comparison_of(exporting("kernel_AVX512_SPR")), [kernels]
    ).divergences
    assert known.explained
    # One more exported function the expectation does not name: the member stays unexplained.
    both = exporting("kernel_AVX512_SPR", "backdoor")
    (unknown,) = explain_expected(comparison_of(both), [kernels]).divergences
    assert not unknown.explained


@pytest.mark.parametrize("kind", ["runs-on-its-own", "installed-file", "installed-mode"])
def test_what_changes_the_installed_files_is_never_expected(tmp_path: Path, kind: str) -> None:
    text = GOOD.replace('kind = "content"', f'kind = "{kind}"')
    with pytest.raises(PlanError, match="no recipe may expect"):
        load_recipe(write(tmp_path, text))
    row = Divergence(DivergenceKind(kind), "x", member="demo/build-info.txt")
    expected = replace(CONFIG, member="demo/build-info.txt", kind=DivergenceKind(kind))
    (kept,) = explain_expected(comparison_of(row), [expected]).divergences
    assert not kept.explained


def test_expected_symbols_need_the_exports_aspect(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "content"', 'kind = "content"\nsymbols = ["f*"]')
    with pytest.raises(PlanError, match=r"expected\[1\]\.symbols is allowed only with aspects"):
        load_recipe(write(tmp_path, text))
    ok = GOOD.replace(
        'kind = "content"', 'kind = "content"\naspects = ["exports"]\nsymbols = ["f*"]'
    )
    (expected,) = load_recipe(write(tmp_path, ok)).releases[0].expected
    assert expected.symbols == ("f*",)


def test_an_already_explained_divergence_keeps_its_reason() -> None:
    d = Divergence(DivergenceKind.CONTENT, "x", member="demo/__config__.py").explained_by(
        Reason("built-in", "built-in reason")
    )
    (kept,) = explain_expected(comparison_of(d), [CONFIG]).divergences
    assert kept.explanation == "built-in reason"


# --- validating the repository's recipes ------------------------------------------------------


def test_every_recipe_in_the_repository_validates() -> None:
    paths = recipe_paths(REPO_RECIPES)
    assert {p.stem for p in paths} >= {"numpy", "markupsafe", "msgpack"}
    recipes = validate_recipes(REPO_RECIPES)
    assert len(recipes) == len(paths)
    numpy = next(r for r in recipes if r.project == "numpy")
    reasons = " ".join(e.reason for e in numpy.releases[0].expected)
    assert "__config__" in reasons and "/tmp/cc" in reasons


def test_validation_checks_the_fallback_image_installs_the_system_packages(
    tmp_path: Path,
) -> None:
    text = GOOD.replace(
        'pre_build = ["echo before"]', 'pre_build = ["echo before"]\nsystem_packages = ["gfortran"]'
    )
    write(tmp_path, text)
    assert validate_recipes(tmp_path)[0].project == "Demo"
    lacking = text.replace('fallback = "bookworm-py311-numeric"', 'fallback = "bookworm-py311"')
    write(tmp_path, lacking)
    with pytest.raises(PlanError, match="gfortran, which the image bookworm-py311 does not"):
        validate_recipes(tmp_path)
    unknown = text.replace('fallback = "bookworm-py311-numeric"', 'fallback = "nowhere"')
    write(tmp_path, unknown)
    with pytest.raises(PlanError, match=r"image\.fallback is 'nowhere'"):
        validate_recipes(tmp_path)


def test_validating_an_empty_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no recipe files"):
        validate_recipes(tmp_path)


INVARIANTS = ExpectedDivergence(
    member="demo/_core.*.so",
    kind=DivergenceKind.CONTENT,
    reason="dispatch",
    link="https://example.org/3",
    aspects=("invariants",),
    findings=("calls QSort_AVX512_ICL*",),
)


def _with_findings(*found: tuple[str, str]) -> Divergence:
    return Divergence(
        DivergenceKind.CONTENT,
        "elf",
        member="demo/_core.cpython-311-x86_64-linux-gnu.so",
        analyser="elf",
        aspects=("invariants",),
        findings=tuple(Finding(check, what, "somewhere") for check, what in found),
    )


def test_invariant_findings_are_expected_one_by_one_and_together() -> None:
    strings = replace(INVARIANTS, reason="dead branch", findings=("strings Void-arrays can*",))
    both = _with_findings(("calls", "QSort_AVX512_ICL_half"), ("strings", "Void-arrays can only"))
    (alone,) = explain_expected(comparison_of(both), [INVARIANTS]).divergences
    assert not alone.explained  # one finding no expectation names
    (together,) = explain_expected(comparison_of(both), [INVARIANTS, strings]).divergences
    assert together.explained
    assert [r.text for r in together.reasons] == ["dispatch", "dead branch"]
    # A call the recipe does not name, beside one it does: the member stays for the reviewer.
    added = _with_findings(("calls", "QSort_AVX512_ICL_half"), ("calls", "system@plt"))
    (kept,) = explain_expected(comparison_of(added), [INVARIANTS, strings]).divergences
    assert not kept.explained


@pytest.mark.parametrize(
    ("findings", "message"),
    [
        ("", "is needed with aspects"),
        ('["syscalls escape"]', "no recipe may expect a system call"),
        ('["calls *"]', "at least 6 literal characters"),
        ('["calls ab*"]', "at least 6 literal characters"),
        ('["jumps somewhere"]', "CHECK one of"),
    ],
)
def test_expected_findings_must_name_them(tmp_path: Path, findings: str, message: str) -> None:
    extra = 'aspects = ["invariants"]' + (f"\nfindings = {findings}" if findings else "")
    text = GOOD.replace('kind = "content"', f'kind = "content"\n{extra}')
    with pytest.raises(PlanError, match=message):
        load_recipe(write(tmp_path, text))
    without = GOOD.replace('kind = "content"', 'kind = "content"\nfindings = ["calls abcdefgh"]')
    with pytest.raises(PlanError, match="allowed only there"):
        load_recipe(write(tmp_path, without))
