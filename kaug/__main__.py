"""`python -m kaug`: the `kaug` command."""

import sys

from kaug.cli import main

sys.exit(main())
