#!/usr/bin/env bash
# Control-plane figures (SPEC §6, issue 3): idle RSS of the Tower, Conductor and node agent,
# as three daemons and as one `skr8tr_server` process; node start to schedulable; `skr8tr up` to every replica healthy and registered; kill -9 of a
# replica to its replacement registered. Builds the release binaries, runs a mesh on loopback
# ports of its own, and writes loadtest/results/control-plane.md. The `up` figure comes from
# `skr8tr-loadtest up` (its own mesh with an ingress, polled every ~1 ms in-process).
#
#   bash loadtest/control-plane.sh            # from the repository root
#   CARGO_TARGET_DIR=/tmp/t bash loadtest/control-plane.sh   # binaries from /tmp/t/release
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cargo build --release --locked --bin skr8tr --bin skr8tr_reg --bin skr8tr_sched --bin skr8tr_node \
  --bin skr8tr_server --bin skr8tr_ingress --bin skr8tr-loadtest >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d /tmp/skr8tr-cp-XXXXXX)
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)  # the timings depend on what else runs on the machine
PIDS=()
cleanup() {
  # The node stops its workloads on SIGTERM (deregister, drain, SIGTERM, SIGKILL): give it time.
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pkill -f "$BIN/skr8tr example-service" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

T=27772; C=27771; H=27770; N=27775
export SKR8TR_CONDUCTOR=127.0.0.1:$C SKR8TR_TOWER=127.0.0.1:$T SKR8TR_LOG=warn
now_ms() { date +%s%3N; }
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup"; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
# Resident KiB by kind of mapping: the daemon's own file, shared libraries, heap+anonymous,
# stack, io_uring rings. File-backed counts include the kernel's fault-around (64 KiB around each
# page fault), so pages that never ran are counted too.
split_kb() {
  awk -v exe="$(readlink "/proc/$1/exe")" '
    /^[0-9a-f]+-[0-9a-f]+ / { n = $6; c = "anon"; if (n == exe) c = "exe"; else if (n ~ /\.so/) c = "libs";
      else if (n == "[stack]") c = "stack"; else if (n ~ /io_uring/) c = "ring"; else if (n == "[vdso]" || n == "[vvar]") c = "vdso" }
    /^Rss:/ { k[c] += $2 }
    END { printf "own code/data %d, shared libraries %d, heap+anon %d, stack %d, io_uring rings %d", k["exe"], k["libs"], k["anon"], k["stack"], k["ring"] }' "/proc/$1/smaps"
}
wait_for() { # timeout_s, command...
  local deadline=$(( $(now_ms) + $1 * 1000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "timed out: $*" >&2; return 1; }
    sleep 0.005
  done
}

"$BIN/skr8tr_reg" --listen 127.0.0.1:$T 2>"$WORK/tower.log" & PIDS+=($!); TOWER=$!
"$BIN/skr8tr_sched" --listen 127.0.0.1:$C --heartbeat-listen 127.0.0.1:$H --state-dir "$WORK/conductor" 2>"$WORK/conductor.log" & PIDS+=($!); SCHED=$!
wait_for 5 "$BIN/skr8tr" ping --timeout-ms 200 || true

node_started=$(now_ms)
"$BIN/skr8tr_node" --listen 127.0.0.1:$N --conductor 127.0.0.1:$H --tower 127.0.0.1:$T \
  --state-dir "$WORK/node" --metrics off --stop-workloads-on-exit 2>"$WORK/node.log" & PIDS+=($!); NODE=$!
has_node() { "$BIN/skr8tr" nodes --json | grep -q '"node"'; }
wait_for 10 has_node
node_ready=$(( $(now_ms) - node_started ))

sleep 3
rss_t=$(rss_kb $TOWER); rss_c=$(rss_kb $SCHED); rss_n=$(rss_kb $NODE)
pss_t=$(pss_kb $TOWER); pss_c=$(pss_kb $SCHED); pss_n=$(pss_kb $NODE)
split_t=$(split_kb $TOWER); split_c=$(split_kb $SCHED); split_n=$(split_kb $NODE)

cat > "$WORK/hello.skr8tr" <<MANIFEST
app hello
  exec "$BIN/skr8tr"
  args example-service
  port auto
  replicas 3
  health GET /healthz 200
MANIFEST
three_in_tower() {
  local n
  n=$(python3 - "$T" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
s.sendto(b"LIST", ("127.0.0.1", int(sys.argv[1])))
print(sum(1 for e in s.recv(65536).decode().split("|", 3)[3].split(",") if e.startswith("hello:")))
PY
)
  [ "$n" -ge 3 ]
}
# The kill -9 figure needs the app up; the `up` figure itself is measured below, precisely.
"$BIN/skr8tr" up "$WORK/hello.skr8tr" >/dev/null
wait_for 30 three_in_tower

victim=$("$BIN/skr8tr" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["replicas"][0]["pid"])' 2>/dev/null || true)
if [ -z "$victim" ]; then victim=$("$BIN/skr8tr" list | awk 'NR==2 {print $3}'); fi
kill_started=$(now_ms)
kill -9 "$victim"
healed() { three_in_tower && ! "$BIN/skr8tr" list | awk '{print $3}' | grep -qx "$victim"; }
wait_for 30 healed
kill_ready=$(( $(now_ms) - kill_started ))

rss_sum=$(( rss_t + rss_c + rss_n )); pss_sum=$(( pss_t + pss_c + pss_n ))

# The same three daemons in one process: skr8tr_server, idle the same way (node joined, 3 s).
ST=28772; SC=28771; SH=28770; SN=28775
"$BIN/skr8tr_server" --tower-listen 127.0.0.1:$ST --conductor-listen 127.0.0.1:$SC \
  --heartbeat-listen 127.0.0.1:$SH --node-listen 127.0.0.1:$SN --state-dir "$WORK/server" \
  --metrics off --stop-workloads-on-exit 2>"$WORK/server.log" & PIDS+=($!); SERVER=$!
server_has_node() { "$BIN/skr8tr" --conductor 127.0.0.1:$SC nodes --json | grep -q '"node"'; }
wait_for 10 server_has_node
sleep 3
rss_s=$(rss_kb $SERVER); pss_s=$(pss_kb $SERVER); split_s=$(split_kb $SERVER)
kill $SERVER

# `skr8tr up` → first 200 / registered / healthy: 5 rounds on an idle mesh of its own.
"$BIN/skr8tr-loadtest" --bin-dir "$BIN" --out "$WORK/up.md" up >/dev/null 2>"$WORK/up.log" \
  || { cat "$WORK/up.log" >&2; exit 1; }
up_row=$(grep '^| h\.' "$WORK/up.md" | awk -F' \\| ' '{print $6}')
up_note=$(grep -A1 '^| h\.' "$WORK/up.md" | sed -n 's/^ *- //p' | head -1)
[ -n "$up_note" ] || up_note=$(grep -m1 'idle mesh (no load)' "$WORK/up.md" | sed 's/^ *[-*] //')
OUT=$ROOT/loadtest/results/control-plane.md
{
  echo "# Control-plane figures"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo), kernel $(uname -r)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- command: \`bash loadtest/control-plane.sh\` (release build, loopback, dev mode: no keys)"
  echo "- load average (1/5/15 min) before the measurements: ${LOAD_BEFORE}, after: $(cut -d" " -f1-3 /proc/loadavg)"
  echo
  echo "| figure | skr8tr | goal (SPEC §6 / issue) | the seed's claim |"
  echo "|---|---|---|---|"
  echo "| idle RSS (PSS): Tower | ${rss_t} KiB (${pss_t} KiB) | | |"
  echo "| idle RSS (PSS): Conductor | ${rss_c} KiB (${pss_c} KiB) | | |"
  echo "| idle RSS (PSS): node agent | ${rss_n} KiB (${pss_n} KiB) | | |"
  echo "| idle RSS (PSS): together, three processes | ${rss_sum} KiB (${pss_sum} KiB) | ≤ 6 MB (SPEC), ≤ 8 MB (issue 3) | ~12 MB (C daemons measured 5.7 MB) |"
  echo "| idle RSS (PSS): together, one \`skr8tr_server\` | ${rss_s} KiB (${pss_s} KiB) | ≤ 6 MB (SPEC), ≤ 8 MB (issue 3) | |"
  echo "| node start → schedulable | ${node_ready} ms | ≤ 1 s | < 6 s |"
  echo "| \`skr8tr up\` (3 replicas, example service, idle) | ${up_row} | ≤ 50 ms first 200 (SPEC) / ≤ 100 ms all registered (issue 3) | ~1.2 s |"
  echo "| kill -9 of a replica → replacement registered | ${kill_ready} ms | | |"
  echo
  echo "Resident KiB by mapping (\`/proc/PID/smaps\`):"
  echo
  echo "- Tower: ${split_t}"
  echo "- Conductor: ${split_c}"
  echo "- node agent: ${split_n}"
  echo "- skr8tr_server (all three): ${split_s}"
  echo "- \`up\`: ${up_note}"
} > "$OUT"
cat "$OUT"
