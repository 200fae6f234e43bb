"""`python -m jointdistill_core`: the ROS-free `jointdistill` command."""
import sys

from jointdistill_core.cli import main

sys.exit(main())
