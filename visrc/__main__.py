import sys

from visrc.cli import main

sys.exit(main())
