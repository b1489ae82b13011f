"""``python -m gossip``: the same command line as the ``gossip`` script."""

import sys

from gossip.launch import main

sys.exit(main())
