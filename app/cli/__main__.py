"""`python -m app.cli`: the same as `spine`."""

from app.cli import main

if __name__ == "__main__":
    main(prog_name="spine")
