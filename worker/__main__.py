"""`python -m worker`: the same as `spine worker start`."""

from app.cli import main

if __name__ == "__main__":
    main(["worker", "start"])
