import sys

from jointdistill_core.cli import main

sys.exit(main())
