"""``python -m automl.cli``: the command line."""

import sys

from automl.cli.commands import main

sys.exit(main())
