"""``python -m shufflekit.device JOB.json``: job mode (see ``job``)."""

import sys

from .job import main

if __name__ == "__main__":
    sys.exit(main())
