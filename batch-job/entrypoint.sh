#!/usr/bin/env bash
# Entrypoint of the milvus-tier AWS Batch job image (docker/Dockerfile).
#
# Starts the local Milvus 1.1.1 build engine, waits until its HTTP API answers GET /state,
# runs `milvus-tier migrate` with the job's arguments (the Batch command override, e.g.
# `migrate --date 2026-11-20`, or `migrate --from D1 --to D2 --day-from-array-index` in an
# array job's child), uploads the JSON report when REPORT_TARGET is set, stops the engine
# and exits with migrate's exit code (0 ok, 1 failure, 2 bad input, 3 locked, 4 timeout,
# 5 conflict). If the engine never becomes healthy the job exits 1 without migrating.
#
# Environment (defaults fit the image):
#   ENGINE_CMD                 command starting the engine
#                              (/var/lib/milvus/bin/milvus_server -c /var/lib/milvus/conf/server_config.yaml)
#   ENGINE_URL                 its HTTP API (http://127.0.0.1:19121)
#   ENGINE_START_TIMEOUT_SECS  how long to wait for it to answer (300)
#   ENGINE_STOP_TIMEOUT_SECS   how long to wait after SIGTERM before SIGKILL (60)
#   TIER_BIN                   the milvus-tier binary (milvus-tier)
#   REPORT_TARGET              s3://bucket/prefix or file:///dir for the JSON report (unset: no upload)
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

engine_pid=""
stop_engine() {
  [ -n "$engine_pid" ] || return 0
  if kill -0 "$engine_pid" 2>/dev/null; then
    kill -TERM "$engine_pid" 2>/dev/null
    for _ in $(seq 1 $((ENGINE_STOP_TIMEOUT_SECS * 10))); do
      kill -0 "$engine_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$engine_pid" 2>/dev/null; then
      log "engine pid $engine_pid ignored SIGTERM for ${ENGINE_STOP_TIMEOUT_SECS}s; killing it"
      kill -KILL "$engine_pid" 2>/dev/null
    fi
  fi
  wait "$engine_pid" 2>/dev/null
  log "engine pid $engine_pid stopped"
  engine_pid=""
}
trap stop_engine EXIT
trap 'log "terminated"; stop_engine; exit 143' TERM INT

log "starting engine: $ENGINE_CMD"
# Word-split on purpose (ENGINE_CMD is a command line without quoting), but no globbing.
set -f
# shellcheck disable=SC2086
$ENGINE_CMD &
engine_pid=$!
set +f

deadline=$((SECONDS + ENGINE_START_TIMEOUT_SECS))
until healthy; do
  if ! kill -0 "$engine_pid" 2>/dev/null; then
    wait "$engine_pid" 2>/dev/null
    log "engine exited with code $? before answering $ENGINE_URL/state"
    engine_pid=""
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    log "engine did not answer $ENGINE_URL/state within ${ENGINE_START_TIMEOUT_SECS}s"
    exit 1
  fi
  sleep 0.2
done
log "engine healthy at $ENGINE_URL"

job=${AWS_BATCH_JOB_ID:-local-$$}
report="$WORK_DIR/milvus-tier-report-${job//[^A-Za-z0-9_.-]/-}.json"
"$TIER_BIN" "$@" --report "$report"
code=$?
log "milvus-tier $* exited with $code"

if [ -n "${REPORT_TARGET:-}" ] && [ -f "$report" ]; then
  name=$(basename "$report")
  case "$REPORT_TARGET" in
    s3://*)
      aws s3 cp --only-show-errors "$report" "${REPORT_TARGET%/}/$name" \
        || log "report upload to ${REPORT_TARGET%/}/$name failed (job result unchanged)" ;;
    file://*)
      dir=${REPORT_TARGET#file://}
      { mkdir -p "$dir" && cp "$report" "$dir/$name"; } \
        || log "report copy to $dir/$name failed (job result unchanged)" ;;
    *)
      log "REPORT_TARGET must start with s3:// or file:// (report not uploaded)" ;;
  esac
fi

stop_engine
exit "$code"
