"""`python -m rebuild`: the same CLI as the `rebuild` entry point."""

from rebuild.cli import main

main()
