#!/usr/bin/env bash
# Entrypoint of the milvus-tier AWS Batch job image (docker/Dockerfile).
#
# Starts the local Milvus 1.1.1 build engine in its own process group, waits until its HTTP
# API answers GET /state, runs `milvus-tier migrate` with the job's arguments (the Batch
# command override, e.g. `migrate --date 2026-11-20`, or `migrate --from D1 --to D2
# --day-from-array-index` in an array job's child), uploads the JSON report with
# `milvus-tier report upload` when REPORT_TARGET is set, stops the engine and exits with
# migrate's exit code (0 ok, 1 failure, 2 bad input, 3 locked, 4 timeout, 5 mismatch,
# 6 not ready; see the README's exit codes).
# If the engine never becomes healthy the job writes and uploads a report naming how the
# engine ended (exit code or signal) and exits 1 without migrating.
#
# Signals: Milvus 1.1.1 calls kill(0, SIGUSR1) when it cannot open its database
# (DBWrapper::StartService, e.g. "Wal init error!"), which signals its whole process group.
# The engine therefore runs in a process group of its own (set -m), and this script also
# survives a stray SIGUSR1 (trapped, logged).
#
# Environment (defaults fit the image):
#   ENGINE_CMD                 command starting the engine
#                              (/var/lib/milvus/bin/milvus_server -c /var/lib/milvus/conf/server_config.yaml)
#   ENGINE_URL                 its HTTP API (http://127.0.0.1:19121)
#   ENGINE_START_TIMEOUT_SECS  how long to wait for it to answer (300)
#   ENGINE_STOP_TIMEOUT_SECS   how long to wait after SIGTERM before SIGKILL (60)
#   TIER_BIN                   the milvus-tier binary (milvus-tier)
#   REPORT_TARGET              s3://bucket/prefix or file:///dir for the JSON report (unset: no
#                              upload); S3 is reached with the config's [backup] endpoint,
#                              region and addressing, and the standard AWS credential chain
#   WORK_DIR                   where the report is written first (/tmp)
# milvus-tier itself reads MILVUS_TIER_CONFIG and the MILVUS_TIER_* variables.
set -uo pipefail

ENGINE_CMD=${ENGINE_CMD:-/var/lib/milvus/bin/milvus_server -c /var/lib/milvus/conf/server_config.yaml}
ENGINE_URL=${ENGINE_URL:-http://127.0.0.1:19121}
ENGINE_START_TIMEOUT_SECS=${ENGINE_START_TIMEOUT_SECS:-300}
ENGINE_STOP_TIMEOUT_SECS=${ENGINE_STOP_TIMEOUT_SECS:-60}
TIER_BIN=${TIER_BIN:-milvus-tier}
WORK_DIR=${WORK_DIR:-/tmp}

log() { echo "entrypoint: $*" >&2; }

if [ "${1:-}" != "migrate" ]; then
  log "expected the arguments \`migrate …\` (the Batch command override), got: $*"
  exit 2
fi

hostport=${ENGINE_URL#*://}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
if [ "$host" = "$hostport" ]; then port=80; fi

# One GET /state over bash's /dev/tcp (the engine image need not have curl); 0 on HTTP 200.
healthy() {
  # In a subshell: a failed redirection of `exec` ends the shell that runs it.
  (
    exec 3<>"/dev/tcp/$host/$port" || exit 1
    printf 'GET /state HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
    IFS= read -r -t 5 status <&3 || exit 1
    [[ "$status" == HTTP/1.[01]\ 200* ]]
  ) 2>/dev/null
}

job=${AWS_BATCH_JOB_ID:-local-$$}
report="$WORK_DIR/milvus-tier-report-${job//[^A-Za-z0-9_.-]/-}.json"

# Send the report to REPORT_TARGET through milvus-tier (no AWS CLI in the image).
upload_report() {
  [ -n "${REPORT_TARGET:-}" ] && [ -f "$report" ] || return 0
  local to
  to="${REPORT_TARGET%/}/$(basename "$report")"
  "$TIER_BIN" report upload "$report" --to "$to" >&2 \
    || log "report upload to $to failed (job result unchanged)"
}

# A JSON string literal of $1.
json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# The report of a job whose engine never answered: why, and how the engine ended.
engine_failure_report() { # message exit_code signal
  local sig=null
  [ -z "$3" ] || sig=$(json_str "$3")
  printf '{"days": [], "error": %s, "engine": {"exit_code": %s, "signal": %s}}\n' \
    "$(json_str "$1")" "${2:-null}" "$sig" >"$report.tmp" && mv "$report.tmp" "$report"
}

engine_pid=""
stop_engine() {
  [ -n "$engine_pid" ] || return 0
  if kill -0 "$engine_pid" 2>/dev/null; then
    # The engine's whole process group (it may be a wrapper with children).
    kill -TERM -- "-$engine_pid" 2>/dev/null || kill -TERM "$engine_pid" 2>/dev/null
    for _ in $(seq 1 $((ENGINE_STOP_TIMEOUT_SECS * 10))); do
      kill -0 "$engine_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$engine_pid" 2>/dev/null; then
      log "engine pid $engine_pid ignored SIGTERM for ${ENGINE_STOP_TIMEOUT_SECS}s; killing it"
      kill -KILL -- "-$engine_pid" 2>/dev/null || kill -KILL "$engine_pid" 2>/dev/null
    fi
  fi
  wait "$engine_pid" 2>/dev/null
  log "engine pid $engine_pid stopped"
  engine_pid=""
}
trap stop_engine EXIT
trap 'log "terminated"; stop_engine; exit 143' TERM INT
# Trapped rather than ignored, so the engine still gets the default disposition.
trap 'log "received SIGUSR1 (sent to a process group this script shares); ignored"' USR1

log "starting engine: $ENGINE_CMD"
# Word-split on purpose (ENGINE_CMD is a command line without quoting), but no globbing.
# Job control (set -m) puts the engine in a process group of its own, so its
# kill(0, SIGUSR1) reaches only the engine.
set -f -m
# shellcheck disable=SC2086
$ENGINE_CMD &
engine_pid=$!
set +f +m

deadline=$((SECONDS + ENGINE_START_TIMEOUT_SECS))
until healthy; do
  if ! kill -0 "$engine_pid" 2>/dev/null; then
    wait "$engine_pid" 2>/dev/null
    status=$?
    engine_pid=""
    if [ "$status" -gt 128 ]; then
      signal=$(kill -l "$((status - 128))" 2>/dev/null || echo "$((status - 128))")
      msg="engine killed by signal $signal before answering $ENGINE_URL/state"
      engine_failure_report "$msg" "" "$signal"
    else
      msg="engine exited with code $status before answering $ENGINE_URL/state"
      engine_failure_report "$msg" "$status" ""
    fi
    log "$msg"
    upload_report
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    msg="engine did not answer $ENGINE_URL/state within ${ENGINE_START_TIMEOUT_SECS}s"
    log "$msg"
    engine_failure_report "$msg" "" ""
    upload_report
    exit 1
  fi
  sleep 0.2
done
log "engine healthy at $ENGINE_URL"

"$TIER_BIN" "$@" --report "$report"
code=$?
log "milvus-tier $* exited with $code"
upload_report

stop_engine
exit "$code"
