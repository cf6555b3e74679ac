"""``python -m hpclab.bss`` runs the boot-script-service double."""
import sys

from hpclab.bss.server import main

sys.exit(main())
