"""`python -m flowscale ...`: see flowscale/cli.py."""

import sys

from flowscale.cli import main

sys.exit(main())
