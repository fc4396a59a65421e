"""Attestations kept in the store by `batch` and linked from the review site."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ServeRelease
from helpers_cli import run_cli as run
from helpers_index import LocalServer

from rebuild.attest import bundle
from rebuild.attest.keys import Ed25519Signer, generate, load_private, load_public
from rebuild.batch import attestation_of
from rebuild.report.html import write_site
from rebuild.store import Store, build_review

from .reports import check_report


def test_the_store_keeps_a_result_s_signed_attestation_and_the_site_links_it(
    tmp_path: Path,
) -> None:
    report, wheel = check_report(tmp_path / "check")
    pair = generate(tmp_path / "keys")
    signer = Ed25519Signer(load_private(pair.private))
    kept = attestation_of(report, signer)
    assert kept is not None and kept[1] == pair.keyid
    with Store(tmp_path / "results.sqlite") as store:
        result_id = store.record(report, run_id=None, seconds=1.0, attestation=kept)
        assert store.attestation(result_id) == kept
        assert store.count("attestations") == 1
        index = write_site(store, build_review(store.current_results()), tmp_path / "site")
    page = (index.parent / "releases" / "demo-1.0.html").read_text()
    link = re.search(r'href="\.\./attestations/([^"]+)"', page)
    assert link is not None and f"signed by <code>{pair.keyid}</code>" in page
    written = index.parent / "attestations" / link[1]
    verified = bundle.verify(written.read_text(), load_public(pair.public), wheel)
    assert verified.verdict == "divergent"


def test_a_result_with_no_wheel_keeps_no_attestation(tmp_path: Path) -> None:
    from dataclasses import replace

    report, _ = check_report(tmp_path)
    assert attestation_of(replace(report, comparison=None, release=None), None) is None
    unsigned = attestation_of(report, None)
    assert unsigned is not None and unsigned[1] is None


@pytest.mark.docker
def test_batch_signs_what_it_keeps(
    tmp_path: Path, local_index: tuple[LocalServer, ServeRelease]
) -> None:
    from test_batch import CODE, deps_file, publish

    url = publish(tmp_path, local_index[1], {"alpha": [("1.0", "ok", CODE)]})
    deps = deps_file(tmp_path, ["alpha==1.0"])
    assert run("attest", "keygen", cwd=tmp_path).returncode == 0
    store_path = tmp_path / "results.sqlite"
    done = run(
        "batch",
        deps,
        "--index-url",
        url,
        "--cache-dir",
        tmp_path / "cache",
        "--store",
        store_path,
        "--sign-key",
        tmp_path / "rebuild-attest.key",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with Store(store_path) as store:
        (result,) = store.current_results()
        kept = store.attestation(result.id)
    assert kept is not None and kept[1] is not None
    wheel = tmp_path / "alpha" / "published" / "alpha-1.0-py3-none-any.whl"
    verified = bundle.verify(kept[0], load_public(tmp_path / "rebuild-attest.pub"), wheel)
    assert verified.verdict == "reproducible"
