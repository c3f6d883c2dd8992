"""`python -m bench` (and `make bench`): the one entry point."""

from bench.cli import main

raise SystemExit(main())
