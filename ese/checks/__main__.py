"""`python -m ese.checks`: what `nox -s configs` runs."""

import sys

from ese.checks.run import main

sys.exit(main())
