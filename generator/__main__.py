"""``python -m generator`` runs the ``servicegen`` command."""

import sys

from generator.cli import main

sys.exit(main())
