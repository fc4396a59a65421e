"""Tests of rebuild.sources: wheel vs sdist, sdist vs git, locating and fetching the repository."""
