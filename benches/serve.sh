#!/usr/bin/env bash
# skr8tr_serve against nginx serving the same files (issue 15, SPEC §7.5), in one run on one
# machine: req/s and CPU per request for a 1 KiB and a 1 MiB file.
#
#   bash benches/serve.sh                         # builds the release skr8tr_serve unless BIN is given
#   BIN=/tmp/bins/skr8tr_serve ROUNDS=5 bash benches/serve.sh
#
# Both serve one directory (1k.bin, 1m.bin) on loopback with one worker/core per CPU:
#   skr8tr   skr8tr_serve --threads CORES (ETag, Last-Modified, Accept-Ranges, no-cache)
#   nginx    sendfile on, tcp_nopush on, etag on (its defaults for a static site), no open_file_cache
# Two phases per file, each round in rotating order:
#   fixed rate  oha -q RATE (keep-alive): the server's CPU time per request (user+sys, /proc);
#   saturation  wrk -c CONNS: req/s and CPU per request.
# Prints a markdown report (date, machine, command, medians of the rounds) on stdout; logs on
# stderr. Needs nginx, wrk, oha (`cargo install --locked oha`), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:$HOME/.cargo/bin:/usr/sbin:/sbin"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
RATE_1K=${RATE_1K:-4000}
RATE_1M=${RATE_1M:-300}
RATE_CONNS=${RATE_CONNS:-32}
CONNS=${CONNS:-64}
CORES=${CORES:-$(nproc)}
BASE_PORT=${BASE_PORT:-19280}
log() { printf '[serve.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in nginx wrk oha python3 curl; do
  command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --bin skr8tr_serve >&2
  BIN=$ROOT/target/release/skr8tr_serve
fi

WORK=$(mktemp -d /tmp/skr8tr-serve-XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp"
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
head -c $((1 << 20)) /dev/urandom >"$WORK/www/1m.bin"
chmod -R a+rX "$WORK/www"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/nginx.conf" <<EOF
worker_processes $CORES;
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 127.0.0.1:$((BASE_PORT + 2)) reuseport backlog=4096;
        root $WORK/www;
    }
}
EOF

declare -A PORT PID
NAMES=(skr8tr nginx)
RUST_LOG=warn "$BIN" --dir "$WORK/www" --listen "127.0.0.1:$((BASE_PORT + 1))" \
  --threads "$CORES" >"$WORK/skr8tr.log" 2>&1 &
PID[skr8tr]=$!; PIDS+=($!); PORT[skr8tr]=$((BASE_PORT + 1))
nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" 2>>"$WORK/nginx-error.log" &
PID[nginx]=$!; PIDS+=($!); PORT[nginx]=$((BASE_PORT + 2))
for n in "${NAMES[@]}"; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:${PORT[$n]}/1k.bin" && break
    sleep 0.1
  done
  for f in 1k.bin 1m.bin; do
    curl -sf "http://127.0.0.1:${PORT[$n]}/$f" | cmp -s - "$WORK/www/$f" \
      || { log "$n does not serve $f intact"; cat "$WORK/$n"*.log >&2 || true; exit 1; }
  done
done
log "up: ${NAMES[*]}"

ticks() { # pid -> "user sys" clock ticks over the process and its children
  local u=0 s=0 p f
  for p in "$1" $(pgrep -P "$1"); do
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    u=$((u + $(echo "$f" | cut -d' ' -f12))); s=$((s + $(echo "$f" | cut -d' ' -f13)))
  done
  echo "$u $s"
}
TCK=$(getconf CLK_TCK)
RES=$WORK/res.tsv
: >"$RES"
measure() { # phase file round target -> a row of RES
  local phase=$1 file=$2 round=$3 t=$4 url="http://127.0.0.1:${PORT[$4]}/$2" out n rps ok u0 s0 u1 s1 rate
  if [ "$phase" = rate ]; then
    rate=$RATE_1K; [ "$file" = 1m.bin ] && rate=$RATE_1M
    oha -z "${WARMUP}s" -c "$RATE_CONNS" -q "$rate" --no-tui "$url" >/dev/null 2>&1 || true
    read -r u0 s0 < <(ticks "${PID[$t]}")
    out=$(oha -z "${DURATION}s" -c "$RATE_CONNS" -q "$rate" --no-tui --output-format json "$url" 2>/dev/null)
    read -r u1 s1 < <(ticks "${PID[$t]}")
    read -r n rps ok < <(echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
codes = d.get("statusCodeDistribution", {})
print(sum(codes.values()), d["summary"]["requestsPerSec"], codes.get("200", 0))')
  else
    wrk -t2 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    read -r u0 s0 < <(ticks "${PID[$t]}")
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" "$url" 2>&1)
    read -r u1 s1 < <(ticks "${PID[$t]}")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    ok=$n
    echo "$out" | grep -q 'Non-2xx' && ok=0
  fi
  awk -v p="$phase" -v f="$file" -v r="$round" -v t="$t" -v n="$n" -v q="$rps" -v ok="$ok" \
    -v u=$((u1 - u0)) -v y=$((s1 - s0)) -v k="$TCK" \
    'BEGIN {printf "%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%d\t%d\n", p, f, r, t, q, u / k * 1e6 / n, y / k * 1e6 / n, n, n - ok}' >>"$RES"
  log "$phase $file round $round $t: $rps req/s, $(tail -n1 "$RES" | cut -f6,7) µs/req user/sys"
}
for round in $(seq "$ROUNDS"); do
  for file in 1k.bin 1m.bin; do
    for phase in rate saturate; do
      for i in 0 1; do
        measure "$phase" "$file" "$round" "${NAMES[$(((i + round) % 2))]}"
      done
    done
  done
done

cat <<EOF
# benches/serve.sh — skr8tr_serve against nginx, the same files

Run: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)); \`$BIN\` (\`$(git -C "$ROOT" rev-parse --short HEAD)\`), $(nginx -v 2>&1 | cut -d/ -f2), load average before: $(cut -d' ' -f1-3 /proc/loadavg).

\`\`\`
ROUNDS=$ROUNDS DURATION=$DURATION RATE_1K=$RATE_1K RATE_1M=$RATE_1M RATE_CONNS=$RATE_CONNS CONNS=$CONNS bash benches/serve.sh
\`\`\`

\`GET /1k.bin\` and \`GET /1m.bin\` over keep-alive from one directory, both servers with
$CORES workers. CPU is the server's user+sys time per request (all its processes), median of
$ROUNDS rounds; the load generator shares the cores, so req/s moves with the machine.

EOF
python3 - "$RES" "${NAMES[@]}" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = sys.argv[2:]
def sel(phase, f, t):
    return [r for r in rows if r[0] == phase and r[1] == f and r[3] == t]
for f in ("1k.bin", "1m.bin"):
    for phase, title in (("rate", "fixed rate (oha -q)"), ("saturate", "saturation (wrk)")):
        print(f"## {f}, {title}\n")
        print("| server | req/s (median) | CPU µs/req median (user / sys) | per round µs/req | failed |")
        print("|---|---|---|---|---|")
        cpu = {}
        rps = {}
        for t in names:
            rs = sel(phase, f, t)
            us = [float(r[5]) + float(r[6]) for r in rs]
            cpu[t], rps[t] = st.median(us), st.median(float(r[4]) for r in rs)
            failed = sum(int(r[8]) for r in rs)
            print(f"| {t} | {rps[t]:.0f} | {cpu[t]:.2f} ({st.median(float(r[5]) for r in rs):.2f} / "
                  f"{st.median(float(r[6]) for r in rs):.2f}) | {', '.join(f'{x:.2f}' for x in us)} | {failed} |")
        print(f"\n- skr8tr / nginx: req/s {rps['skr8tr'] / rps['nginx']:.2f} ×, CPU per request "
              f"{cpu['skr8tr'] / cpu['nginx']:.2f} ×.\n")
EOF
