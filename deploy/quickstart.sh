#!/usr/bin/env bash
# The quick start: from a fresh clone to journeys running on a real local Kafka.
#
#   bash deploy/quickstart.sh
#
# 1. checks Java, Maven and Python, sets up .venv
# 2. validates the example journeys (journeys validate journeys/)
# 3. starts a local Kafka broker (deploy/local-kafka.sh; stopped at the end if we started it)
# 4. starts the engine worker (journeys run) and the channel gateway (journeys gateway,
#    simulated provider) on fresh topics of their own (a per-run topic prefix)
# 5. replays the example journeys' events (journeys produce), moved back in time by whole
#    weeks so every timer is already due: the run takes a minute, not a month
# 6. waits until the outcomes on Kafka match what `journeys simulate` gives for the same
#    events, then prints the per-journey, per-node table (journeys stats)
# 7. stops what it started. Logs stay in the run directory it prints.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is not installed. $2" >&2; exit 2; }
}
need java "Install a JDK (17 recommended), e.g. apt-get install openjdk-17-jre-headless."
need mvn "Install Maven, e.g. apt-get install maven: it fetches Kafka from Maven Central."
need python3 "Install Python 3.11 or newer."

echo "==> Python environment"
bash deploy/setup-venv.sh
J=".venv/bin/journeys"

echo "==> journeys validate journeys/"
"$J" validate journeys/

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/journeys-quickstart.XXXXXX")"
stamp="$(date +%s)"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export JOURNEYS_BOOTSTRAP="127.0.0.1:${KAFKA_PORT}"
export JOURNEYS_TOPIC_PREFIX="quickstart-${stamp}-"
export JOURNEYS_APP_ID="quickstart-${stamp}-engine"
export JOURNEYS_GATEWAY_APP_ID="quickstart-${stamp}-gateway"
export JOURNEYS_DATA_DIR="$RUN_DIR/data"
export JOURNEYS_PARTITIONS="${JOURNEYS_PARTITIONS:-4}"
# The events are replayed from the past, so every timer is due at once: let each
# partition settle (backlog and provider receipts handled) before its timers fire.
export JOURNEYS_TIMER_SETTLE_MS="${JOURNEYS_TIMER_SETTLE_MS:-700}"

kafka_was_running=0
bash deploy/local-kafka.sh status >/dev/null 2>&1 && kafka_was_running=1
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((kafka_was_running == 0)); then bash deploy/local-kafka.sh stop || true; fi
  echo "logs: $RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> local Kafka"
bash deploy/local-kafka.sh start

echo "==> engine worker and gateway (topics ${JOURNEYS_TOPIC_PREFIX}journey.*)"
"$J" run --journeys journeys >"$RUN_DIR/worker.log" 2>&1 &
pids+=($!)
"$J" gateway >"$RUN_DIR/gateway.log" 2>&1 &
pids+=($!)

echo "==> replaying the example events"
.venv/bin/python deploy/quickstart.py shift --out "$RUN_DIR/events" journeys/events/*.jsonl
for f in "$RUN_DIR"/events/*.jsonl; do
  "$J" produce --pace "${QUICKSTART_PACE_MS:-40}" "$f"
done

echo "==> waiting for the journeys to finish"
.venv/bin/python deploy/quickstart.py wait --journeys journeys --events "$RUN_DIR/events" \
  --timeout "${QUICKSTART_TIMEOUT:-300}"

echo "==> journeys stats"
"$J" stats
echo
echo "Done. To look again while a broker runs: JOURNEYS_TOPIC_PREFIX=$JOURNEYS_TOPIC_PREFIX $J stats"
