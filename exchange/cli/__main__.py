"""`python -m exchange.cli …` is `govex …` (tests and benchmarks run it this way)."""

import sys

from exchange.cli.main import main

sys.exit(main())
