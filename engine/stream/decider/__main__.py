"""``python -m engine.stream.decider``: the decider of splits that pick their winner."""

import sys

from engine.stream.decider.service import main

sys.exit(main())
