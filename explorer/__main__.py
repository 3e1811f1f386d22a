import sys

from explorer.cli.commands import main

sys.exit(main())
