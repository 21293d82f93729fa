"""``python -m engine.stream.worker``: the engine worker, as ``journeys run``."""

import sys

from engine.stream.worker.service import main

sys.exit(main())
