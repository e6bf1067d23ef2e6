"""``python -m minicnn`` is the ``minicnn`` command."""
import sys

from .apps.cli import main

sys.exit(main())
