"""python3 -m kiln: the same as the `kiln` command (see kiln.cli)."""

import sys

from .cli import main

sys.exit(main())
