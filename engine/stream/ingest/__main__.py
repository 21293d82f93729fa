"""``python -m engine.stream.ingest``: the Segment / RudderStack ingest server, as
``journeys ingest``."""

import sys

from engine.stream.ingest.service import main

sys.exit(main())
