#!/usr/bin/env bash
# The quick start: from a fresh clone to journeys running on a real local Kafka, ending on
# a check that holds.
#
#   bash deploy/quickstart.sh
#
# 1. checks Java, Maven and Python, sets up .venv
# 2. validates the example journeys (journeys/) and the quick start's own
#    (deploy/quickstart/journeys: the same ideas with waits of seconds, not days)
# 3. starts a local Kafka broker (deploy/local-kafka.sh; stopped at the end if we started it)
# 4. starts the engine worker (journeys run) and the channel gateway (journeys gateway,
#    simulated provider) on fresh topics of their own (a per-run topic prefix)
# 5. replays 50 shoppers' events in real time (journeys produce --now): about 25 seconds
# 6. replays the same events, read back from the topic, through the simulator
#    (journeys backtest --topic), and waits until the engine's outcomes on Kafka give the
#    very same per-journey, per-node table: every figure identical, or exit 1
# 7. prints that table (journeys stats) and stops what it started. Logs stay in the run
#    directory it prints.
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
PY=".venv/bin/python"
QS_JOURNEYS="deploy/quickstart/journeys"

echo "==> journeys validate journeys/"
"$J" validate journeys/
echo "==> journeys validate $QS_JOURNEYS/"
"$J" validate "$QS_JOURNEYS/"

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/journeys-quickstart.XXXXXX")"
stamp="$(date +%s)"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export JOURNEYS_BOOTSTRAP="127.0.0.1:${KAFKA_PORT}"
export JOURNEYS_TOPIC_PREFIX="quickstart-${stamp}-"
export JOURNEYS_APP_ID="quickstart-${stamp}-engine"
export JOURNEYS_GATEWAY_APP_ID="quickstart-${stamp}-gateway"
export JOURNEYS_DATA_DIR="$RUN_DIR/data"
export JOURNEYS_PARTITIONS="${JOURNEYS_PARTITIONS:-4}"

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
"$J" run --journeys "$QS_JOURNEYS" >"$RUN_DIR/worker.log" 2>&1 &
pids+=($!)
"$J" gateway >"$RUN_DIR/gateway.log" 2>&1 &
pids+=($!)
"$PY" deploy/quickstart.py ready "$RUN_DIR/worker.log:worker_ready" \
  "$RUN_DIR/gateway.log:gateway_ready" --timeout "${QUICKSTART_READY_TIMEOUT:-120}"

echo "==> replaying shoppers' events in real time (journeys produce --now)"
"$PY" deploy/quickstart.py events --out "$RUN_DIR/events.jsonl"
"$J" produce --now "$RUN_DIR/events.jsonl" 2>"$RUN_DIR/produce.log"

echo "==> journeys backtest --journeys $QS_JOURNEYS --topic --since 15m"
echo "    (the simulator, over the events the worker consumed, read back from the topic)"
"$J" backtest --journeys "$QS_JOURNEYS" --topic --since 15m --json >"$RUN_DIR/backtest.json"

echo "==> waiting for the engine's outcomes to give the same table"
"$PY" deploy/quickstart.py compare --journeys "$QS_JOURNEYS" --backtest "$RUN_DIR/backtest.json" \
  --timeout "${QUICKSTART_TIMEOUT:-90}"

echo "==> journeys stats --journeys $QS_JOURNEYS"
"$J" stats --journeys "$QS_JOURNEYS"
echo
echo "Done. While a broker runs, look again with:"
echo "  JOURNEYS_TOPIC_PREFIX=$JOURNEYS_TOPIC_PREFIX $J stats"
echo "  JOURNEYS_TOPIC_PREFIX=$JOURNEYS_TOPIC_PREFIX $J backtest --journeys $QS_JOURNEYS --topic --since 1d"
echo "Try a change before launch: edit a copy of $QS_JOURNEYS, then"
echo "  $J backtest --journeys COPY --baseline $QS_JOURNEYS --events $RUN_DIR/events.jsonl"
