"""``journeys explain``: why a user got what they got, and why not what they didn't.

One user's inputs, outcomes, trace records (the core's own reasons, :mod:`engine.core.trace`)
and state, from a simulation of an events file or from Kafka (:mod:`.sources`), become one
report (:mod:`.timeline`), printed as text (:mod:`.text`) or JSON, and shown by the
dashboard's user search.
"""
