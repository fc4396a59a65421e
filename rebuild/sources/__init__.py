"""Where the source of a release comes from, and whether the published files are that source.

Two sources are known: the sdist the index serves, and the upstream repository at the release's
commit (located from PEP 740 provenance, the project URLs, or a tag matching the version). The
checks here need no build: every Python file of the wheel against the sdist
(:mod:`~rebuild.sources.wheel_sdist`), every file of the sdist against the tagged tree
(:mod:`~rebuild.sources.sdist_git`), with known generated files explained by
:mod:`~rebuild.sources.rules`.
"""
