"""Splits that pick their winner, on Kafka: the decider service and the control topic.

* :mod:`.control`: reads ``journey.control`` (compacted; every split's decision, key
  ``journey:version:node``) in full, without a consumer group: the decider before it
  decides, every worker before it processes an input (``engine/stream/worker/control.py``).
* :mod:`.watermark`: up to when ``journey.outcomes`` is complete, as far as one can tell.
* :mod:`.service`: ``python -m engine.stream.decider --journeys DIR``: counts the outcomes
  (:class:`engine.core.experiments.Experiments`, as the simulator does), decides at the
  marks the watermark has passed, and produces each decision to the control topic, then
  its ``split_winner_chosen`` outcome to ``journey.outcomes``.
"""
