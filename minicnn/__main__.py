"""``python -m minicnn`` is the ``minicnn`` command."""
import sys

from .cli import main

sys.exit(main())
