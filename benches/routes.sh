#!/usr/bin/env bash
# What a large route table costs per request (issue 11, SPEC §7.6: 10,000 routes ≤ 5 % more CPU
# per request than 1 route), and host routing against nginx with the same routes as
# `server_name` blocks, in one run on one machine.
#
#   bash benches/routes.sh                          # builds the release ingress unless BIN is given
#   BIN=/tmp/bins/ingress ROUNDS=5 RATE=4000 bash benches/routes.sh
#
# Four proxies sit in front of one origin (benches/peers/origin.conf, serving /api/v1/0):
#   skr8tr-1    skr8tr_ingress, a routes file of 1 route:  route h1000.example.com/api/v1 bench
#   skr8tr-10k  skr8tr_ingress, 10,000 routes: 2,000 hosts (h0…h1999.example.com) × 5 prefixes
#               (/, /api, /api/v1, /static/, /users), the request's route among them
#   nginx-1     nginx, one server_name h1000.example.com with location /api/v1
#   nginx-10k   nginx, 2,000 server blocks × the same 5 locations
# Every request is GET /api/v1/0 with Host: h1000.example.com (a deep longest-prefix match on
# an exact host). Two phases, each round in rotating order:
#   fixed rate  oha -q RATE (keep-alive): the proxy's CPU time per request (user+sys, /proc);
#   saturation  wrk -c CONNS: req/s and CPU per request.
# Prints a markdown report (date, machine, command, medians of the rounds) on stdout; logs on
# stderr. Needs nginx, wrk and oha (`cargo install --locked oha`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$PATH:$HOME/.cargo/bin:/usr/sbin:/sbin"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RATE=${RATE:-4000}
RATE_CONNS=${RATE_CONNS:-32}
CONNS=${CONNS:-64}
CORES=${CORES:-$(nproc)}
BASE_PORT=${BASE_PORT:-19180}
HOST=h1000.example.com
log() { printf '[routes.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
for tool in nginx wrk oha python3 curl; do
  command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --bin skr8tr_ingress >&2
  BIN=$ROOT/target/release/skr8tr_ingress
fi

WORK=$(mktemp -d /tmp/skr8tr-routes-XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www/api/v1" "$WORK/tmp"
: >"$WORK/www/api/v1/0"
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

PREFIXES="/ /api /api/v1 /static/ /users"
# The routes files.
echo "route $HOST/api/v1 bench" >"$WORK/one.routes"
python3 - "$WORK/many.routes" "$PREFIXES" <<'EOF'
import sys
path, prefixes = sys.argv[1], sys.argv[2].split()
with open(path, "w") as f:
    for h in range(2000):
        for p in prefixes:
            f.write(f"route h{h}.example.com{p} bench\n")
EOF
[ "$(wc -l <"$WORK/many.routes")" = 10000 ] || { log "expected 10,000 routes"; exit 1; }

# nginx configurations: the proxy block of benches/peers/nginx.conf, with server blocks.
location() {
  cat <<EOF
        location $1 {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
EOF
}
nginx_conf() { # name port servers(python range spec) prefixes
  local name=$1 port=$2 first=$3 last=$4 prefixes=$5
  {
    cat <<EOF
worker_processes $CORES;
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/$name.pid;
error_log $WORK/$name-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    server_names_hash_max_size 8192;
    server_names_hash_bucket_size 64;
    client_body_temp_path $WORK/tmp/$name-body;
    proxy_temp_path $WORK/tmp/$name-proxy;
    fastcgi_temp_path $WORK/tmp/$name-fastcgi;
    uwsgi_temp_path $WORK/tmp/$name-uwsgi;
    scgi_temp_path $WORK/tmp/$name-scgi;
    upstream bench {
        server 127.0.0.1:$BASE_PORT;
        keepalive 256;
        keepalive_requests 10000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$port reuseport backlog=4096 default_server;
        return 404;
    }
EOF
    for h in $(seq "$first" "$last"); do
      echo "    server {"
      echo "        listen 127.0.0.1:$port;"
      echo "        server_name h$h.example.com;"
      for p in $prefixes; do location "$p"; done
      echo "    }"
    done
    echo "}"
  } >"$WORK/$name.conf"
}

sed -e "s|@WORK@|$WORK|g" -e "s|@CORES@|$CORES|g" -e "s|@ORIGIN_PORT@|$BASE_PORT|g" \
  -e "s|@NOFILE@|65536|g" "$ROOT/benches/peers/origin.conf" >"$WORK/origin.conf"
nginx -p "$WORK" -e "$WORK/origin-error.log" -c "$WORK/origin.conf" 2>>"$WORK/origin-error.log" &
PIDS+=($!)

declare -A PORT PID
NAMES=(skr8tr-1 skr8tr-10k nginx-1 nginx-10k)
start_skr8tr() { # name port routes-file
  RUST_LOG=warn "$BIN" --listen "127.0.0.1:$2" --threads "$CORES" --routes-file "$3" \
    --backend "bench=127.0.0.1:$BASE_PORT" --admin off >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!; PIDS+=($!); PORT[$1]=$2
}
start_nginx() { # name port
  nginx -p "$WORK" -e "$WORK/$1-error.log" -c "$WORK/$1.conf" 2>>"$WORK/$1-error.log" &
  PID[$1]=$!; PIDS+=($!); PORT[$1]=$2
}
start_skr8tr skr8tr-1 $((BASE_PORT + 1)) "$WORK/one.routes"
start_skr8tr skr8tr-10k $((BASE_PORT + 2)) "$WORK/many.routes"
nginx_conf nginx-1 $((BASE_PORT + 3)) 1000 1000 "/api/v1"
nginx_conf nginx-10k $((BASE_PORT + 4)) 0 1999 "$PREFIXES"
start_nginx nginx-1 $((BASE_PORT + 3))
start_nginx nginx-10k $((BASE_PORT + 4))
for n in "${NAMES[@]}"; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null -H "Host: $HOST" "http://127.0.0.1:${PORT[$n]}/api/v1/0" && break
    sleep 0.1
  done
  curl -sf -o /dev/null -H "Host: $HOST" "http://127.0.0.1:${PORT[$n]}/api/v1/0" \
    || { log "$n does not answer"; cat "$WORK/$n"*.log >&2 || true; exit 1; }
  # The wrong host must not be served by any of them (the routes really are host routes).
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: h1000.example.org" "http://127.0.0.1:${PORT[$n]}/api/v1/0")
  [ "$code" = 404 ] || { log "$n answered $code for a host it has no route for"; exit 1; }
done
log "up: ${NAMES[*]}"

rss_kb() { # pid -> RSS of the process and its children, KiB
  local t=0 p
  for p in "$1" $(pgrep -P "$1"); do
    t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
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
measure() { # phase round target -> a row of RES
  local phase=$1 round=$2 t=$3 url="http://127.0.0.1:${PORT[$3]}/api/v1/0" out n rps u0 s0 u1 s1
  if [ "$phase" = rate ]; then
    oha -z "${WARMUP}s" -c "$RATE_CONNS" -q "$RATE" --no-tui -H "Host: $HOST" "$url" >/dev/null 2>&1 || true
    read -r u0 s0 < <(ticks "${PID[$t]}")
    out=$(oha -z "${DURATION}s" -c "$RATE_CONNS" -q "$RATE" --no-tui --output-format json \
      -H "Host: $HOST" "$url" 2>/dev/null)
    read -r u1 s1 < <(ticks "${PID[$t]}")
    read -r n rps ok < <(echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
codes = d.get("statusCodeDistribution", {})
n = sum(codes.values())
print(n, d["summary"]["requestsPerSec"], codes.get("200", 0))')
  else
    wrk -t2 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST" "$url" >/dev/null 2>&1 || true
    read -r u0 s0 < <(ticks "${PID[$t]}")
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -H "Host: $HOST" "$url" 2>&1)
    read -r u1 s1 < <(ticks "${PID[$t]}")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    ok=$n
    echo "$out" | grep -q 'Non-2xx' && ok=0
  fi
  awk -v p="$phase" -v r="$round" -v t="$t" -v n="$n" -v q="$rps" -v ok="$ok" \
    -v u=$((u1 - u0)) -v y=$((s1 - s0)) -v k="$TCK" -v rss="$(rss_kb "${PID[$t]}")" \
    'BEGIN {printf "%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%d\t%d\t%d\n", p, r, t, q, u / k * 1e6 / n, y / k * 1e6 / n, n, n - ok, rss}' >>"$RES"
  log "$phase round $round $t: $rps req/s, $(tail -n1 "$RES" | cut -f5,6) µs/req user/sys"
}
for round in $(seq "$ROUNDS"); do
  for phase in rate saturate; do
    k=${#NAMES[@]}
    for i in $(seq 0 $((k - 1))); do
      measure "$phase" "$round" "${NAMES[$(((i + round) % k))]}"
    done
  done
done

cat <<EOF
# benches/routes.sh — route table size and host routing against nginx

Run: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)); \`$BIN\` (\`$(git -C "$ROOT" rev-parse --short HEAD)\`), $(nginx -v 2>&1 | cut -d/ -f2), load average before: $(cut -d' ' -f1-3 /proc/loadavg).

\`\`\`
ROUNDS=$ROUNDS DURATION=$DURATION RATE=$RATE RATE_CONNS=$RATE_CONNS CONNS=$CONNS bash benches/routes.sh
\`\`\`

Every request: \`GET /api/v1/0\`, \`Host: $HOST\` (an exact host, a three-segment longest
prefix). 10k = 2,000 hosts × 5 prefixes, in a routes file for skr8tr and as server blocks for
nginx. CPU is the proxy's user+sys time per request (all its processes), median of $ROUNDS rounds.

EOF
python3 - "$RES" "${NAMES[@]}" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = sys.argv[2:]
def med(phase, t, col):
    return st.median(float(r[col]) for r in rows if r[0] == phase and r[2] == t)
def per_round(phase, t):
    return [float(r[4]) + float(r[5]) for r in rows if r[0] == phase and r[2] == t]
for phase, title in (("rate", "Fixed rate (oha -q)"), ("saturate", "Saturation (wrk)")):
    print(f"## {title}\n")
    print("| target | req/s (median) | CPU µs/req median (user / sys) | per round µs/req | failed | RSS KiB |")
    print("|---|---|---|---|---|---|")
    for t in names:
        us = per_round(phase, t)
        failed = sum(int(r[7]) for r in rows if r[0] == phase and r[2] == t)
        print(f"| {t} | {med(phase, t, 3):.0f} | {st.median(us):.2f} ({med(phase, t, 4):.2f} / {med(phase, t, 5):.2f}) "
              f"| {', '.join(f'{x:.2f}' for x in us)} | {failed} | {med(phase, t, 8):.0f} |")
    print()
    one, many = st.median(per_round(phase, "skr8tr-1")), st.median(per_round(phase, "skr8tr-10k"))
    n1, n10 = st.median(per_round(phase, "nginx-1")), st.median(per_round(phase, "nginx-10k"))
    print(f"- skr8tr: 10k routes cost {100 * (many / one - 1):+.1f} % CPU per request over 1 route (goal ≤ +5 %).")
    print(f"- nginx: 10k server blocks cost {100 * (n10 / n1 - 1):+.1f} % over 1.")
    print(f"- skr8tr-10k / nginx-10k CPU per request: {many / n10:.2f}; "
          f"req/s: {med(phase, 'skr8tr-10k', 3) / med(phase, 'nginx-10k', 3):.2f} ×.\n")
EOF
