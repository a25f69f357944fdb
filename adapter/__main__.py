"""`python -m adapter` runs the bh-adapter command line."""

from adapter.cli import main

main()
