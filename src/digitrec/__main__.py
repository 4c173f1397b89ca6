"""``python -m digitrec`` (and ``torchrun -m digitrec``) runs the command line."""

import sys

from digitrec.cli import main

sys.exit(main())
