"""``python -m hpclab``: the lab command (see hpclab.cli)."""

import sys

from hpclab.cli import main

sys.exit(main())
