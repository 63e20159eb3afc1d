"""Entry point for `python -m tracker`."""

import sys

from tracker.cli.main import main

sys.exit(main())
