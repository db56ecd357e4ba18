#!/usr/bin/env bash
# Runs two clients over a folder of real Markdown notes against one throwaway mind-lite
# daemon, each twice: the first pass must accept every write, the second must replay every
# write unchanged. publish_notes publishes every note. onboard_notes analyses the folder,
# takes the run through approve, apply and rollback, then links, classifies and sends one
# question per note.
#
# Usage: scripts/check-real-notes.sh MIND_LITE_BINARY [NOTES_FOLDER]
#   MIND_LITE_BINARY  the built daemon, e.g. target/release/mind-lite
#   NOTES_FOLDER      defaults to ../shared/data/foam-docs relative to the repository root
#
# The script builds both clients itself with `cargo build --release --example publish_notes
# --example onboard_notes`, so the clients always match the checked-out source. The daemon
# binary is taken as given.
# The daemon gets a fresh SQLite database in a temporary folder and listens on a free
# loopback port. An EXIT trap stops the daemon and removes the folder on success, on error
# and on SIGINT or SIGTERM, but not when the script itself is killed with SIGKILL.
set -euo pipefail

readonly HEALTH_TIMEOUT_SECONDS=30
readonly SHUTDOWN_TIMEOUT_SECONDS=15
readonly LOG_TAIL_LINES=40

usage() {
    echo "usage: $0 MIND_LITE_BINARY [NOTES_FOLDER]" >&2
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $# -lt 1 || $# -gt 2 ]]; then
    usage
    exit 2
fi
if [[ ! -x "$1" || -d "$1" ]]; then
    echo "error: daemon binary $1 is missing or not executable; build it with cargo build --release" >&2
    exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
notes_folder="${2:-$repo_root/../shared/data/foam-docs}"
if [[ ! -d "$notes_folder" ]]; then
    echo "error: notes folder $notes_folder does not exist; pass the folder as the second argument" >&2
    exit 2
fi

tmp_dir="$(mktemp -d "${TMPDIR:-/tmp}/check-real-notes.XXXXXX")"
daemon_log="$tmp_dir/daemon.log"
daemon_pid=""

# Stops the daemon if it is still running. Returns non-zero when it had to be killed
# or when it exited with a non-zero status, before or after SIGTERM.
stop_daemon() {
    local pid="$daemon_pid"
    local status=0
    local stop_reason="on its own"
    [[ -n "$pid" ]] || return 0
    daemon_pid=""

    if kill -0 "$pid" 2>/dev/null; then
        stop_reason="after SIGTERM"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + SHUTDOWN_TIMEOUT_SECONDS))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "error: daemon (pid $pid) still running ${SHUTDOWN_TIMEOUT_SECONDS}s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            return 1
        fi
    fi
    wait "$pid" 2>/dev/null || status=$?
    if ((status != 0)); then
        echo "error: daemon (pid $pid) exited $stop_reason with status $status" >&2
        return 1
    fi
    return 0
}

cleanup() {
    local status=$?
    stop_daemon || status=1
    if ((status != 0)) && [[ -f "$daemon_log" ]]; then
        echo "--- last $LOG_TAIL_LINES lines of the daemon log ($daemon_log) ---" >&2
        tail -n "$LOG_TAIL_LINES" "$daemon_log" >&2 || true
        echo "--- end of daemon log ---" >&2
    fi
    rm -rf "$tmp_dir"
    exit "$status"
}
trap cleanup EXIT
# Turning signals into exit makes the EXIT trap run, so the daemon is stopped on Ctrl-C too.
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building the publish_notes and onboard_notes clients"
(cd "$repo_root" && cargo build --release --example publish_notes --example onboard_notes)
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$repo_root/$target_dir"
publish_client="$target_dir/release/examples/publish_notes"
onboard_client="$target_dir/release/examples/onboard_notes"

# NOTE: the port is released before the daemon binds it, so another process could take it
# in between, and the daemon's bind would then fail.
port="$(python3 -c 'import socket
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1])
sock.close()')"
base_url="http://127.0.0.1:$port"

echo "starting $binary on 127.0.0.1:$port, log in $daemon_log"
"$binary" --database-url "sqlite://$tmp_dir/notes.db?mode=rwc" --bind "127.0.0.1:$port" \
    >"$daemon_log" 2>&1 &
daemon_pid=$!

deadline=$((SECONDS + HEALTH_TIMEOUT_SECONDS))
health_status() {
    curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 --noproxy '*' \
        "$base_url/health" || true
}
until [[ "$(health_status)" == 200 ]]; do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        echo "error: daemon exited before GET /health returned 200; its log follows" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "error: GET $base_url/health did not return 200 within ${HEALTH_TIMEOUT_SECONDS}s; its log follows" >&2
        exit 1
    fi
    sleep 0.2
done

echo "publish_notes, first run: every write must be accepted"
"$publish_client" --base-url "$base_url" --folder "$notes_folder" --expect fresh

echo "publish_notes, second run: every write must be a replay"
"$publish_client" --base-url "$base_url" --folder "$notes_folder" --expect replay

echo "onboard_notes, first run: every ask and links/apply must be accepted"
"$onboard_client" --base-url "$base_url" --folder "$notes_folder" --expect fresh

echo "onboard_notes, second run: every ask and links/apply must be a replay"
"$onboard_client" --base-url "$base_url" --folder "$notes_folder" --expect replay

echo "stopping the daemon"
if ! stop_daemon; then
    exit 1
fi
echo "check-real-notes: all four runs passed"
