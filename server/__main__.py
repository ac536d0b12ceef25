"""``python -m agentjournal`` is the ``agentjournal`` command."""

import sys

from .cli import main

sys.exit(main())
