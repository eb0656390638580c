"""`python -m awsenv`: the same entry point as the `awsenv` program."""
import sys

from .cli.main import main

sys.exit(main())
