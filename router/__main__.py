import sys

from .ops._cli import main

sys.exit(main())
