"""``python -m rnnvision`` (and ``torchrun -m rnnvision``) runs the command line."""

import sys

from rnnvision.cli import main

sys.exit(main())
