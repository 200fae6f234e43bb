import sys

from jointdistill_ros.cli import main

sys.exit(main())
