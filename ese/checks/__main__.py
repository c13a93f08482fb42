"""`python -m ese.checks`: what `nox -s configs` runs."""

import sys

from ese.checks.configs import main

sys.exit(main())
