"""`python -m bench` (and `make bench`): the one entry point."""

from bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
