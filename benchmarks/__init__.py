"""Benchmarks: scripts that print rebuild's figures beside the peer they name."""
