"""Tests of the compare stage (rebuild.compare)."""
