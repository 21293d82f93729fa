"""``python -m engine.stream.gateway``: the channel gateway, as ``journeys gateway``."""

import sys

from engine.stream.gateway.service import main

sys.exit(main())
