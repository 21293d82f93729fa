"""What the engine worker and the gateway share: settings, topics, logs, the faust glue,
the input feed and positions, the commit boundary (checkpoint), the timer index, the
dead-letter producer, and the one service skeleton (:mod:`.service`) both are
configurations of."""
