"""`python -m jointdistill_ros`: the full `jointdistill` command."""
import sys

from jointdistill_ros.cli import main

sys.exit(main())
