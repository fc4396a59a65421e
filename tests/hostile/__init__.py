"""Hostile inputs: a corpus of malicious archives and objects, and the sandbox's proofs."""
