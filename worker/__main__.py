"""`python -m worker`: the worker pool, as `spine worker start` runs it (without the CLI)."""

import sys

from worker.supervisor import main

if __name__ == "__main__":
    sys.exit(main())
