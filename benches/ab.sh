#!/usr/bin/env bash
# A/B of skr8tr_ingress builds or settings, one change at a time, with nginx as the yardstick:
# every variant and nginx sit in front of the same origin (benches/peers/origin.conf) and are
# driven by wrk back to back, in rotating order, round after round. Reports req/s and, the
# steadier figure on a shared machine, the proxy's CPU time per request (user/sys from /proc).
#
#   VARIANTS="old=/tmp/bins/a new=/tmp/bins/b new-coop=/tmp/bins/b@SKR8TR_URING_SETUP=coop" \
#     ROUNDS=5 SIZES="0 1k" CONNS="64" bash benches/ab.sh
#
# A variant is NAME=BINARY[@VAR=VALUE] (one environment variable for that binary). Needs nginx
# and wrk (benches/peer.sh installs them). Prints a markdown table on stdout; logs on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VARIANTS=${VARIANTS:?give VARIANTS="name=binary[@VAR=value] ..."}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
SIZES=${SIZES:-"0 1k 16k"}
CONNS=${CONNS:-"64"}
CORES=${CORES:-$(nproc)}
BASE_PORT=${BASE_PORT:-19080}
PEER=${PEER:-nginx} # nginx, or none
log() { printf '[ab.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

WORK=$(mktemp -d /tmp/skr8tr-ab-XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp"
: >"$WORK/www/0"
head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/www/1k"
head -c 16384 /dev/zero | tr '\0' 'x' >"$WORK/www/16k"
chmod 644 "$WORK/www"/*
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ORIGIN_PORT=$BASE_PORT
render() { # template port
  sed -e "s|@WORK@|$WORK|g" -e "s|@CORES@|$CORES|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
    -e "s|@PORT@|$2|g" -e "s|@UPSTREAM_KEEPALIVE@|256|g" -e "s|@NOFILE@|65536|g" \
    -e "s|@MAXCONN@|65536|g" "$ROOT/benches/peers/$1" >"$WORK/$1"
}
render origin.conf "$ORIGIN_PORT"
nginx -p "$WORK" -e "$WORK/origin-error.log" -c "$WORK/origin.conf" 2>>"$WORK/origin-error.log" &
PIDS+=($!)

declare -A PORT PID
NAMES=()
port=$((BASE_PORT + 1))
if [ "$PEER" = nginx ]; then
  render nginx.conf "$port"
  nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" 2>>"$WORK/nginx-error.log" &
  PID[nginx]=$!; PIDS+=($!); PORT[nginx]=$port; NAMES+=(nginx); port=$((port + 1))
fi
for v in $VARIANTS; do
  name=${v%%=*}; rest=${v#*=}; bin=${rest%%@*}; env=()
  [ "$rest" != "$bin" ] && env=("${rest#*@}")
  env "${env[@]}" RUST_LOG=warn "$bin" --listen "127.0.0.1:$port" --threads "$CORES" \
    --route /:bench --backend "bench=127.0.0.1:$ORIGIN_PORT" --admin off >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!; PIDS+=($!); PORT[$name]=$port; NAMES+=("$name"); port=$((port + 1))
done
for n in "${NAMES[@]}"; do
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:${PORT[$n]}/1k" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:${PORT[$n]}/1k" || { log "$n does not answer"; cat "$WORK/$n.log" >&2; exit 1; }
done
log "up: ${NAMES[*]}"

ticks() { # pid -> utime+children stime as "u s" over the process tree
  local u=0 s=0 p f
  for p in "$1" $(pgrep -P "$1"); do
    f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    u=$((u + $(echo "$f" | cut -d' ' -f12))); s=$((s + $(echo "$f" | cut -d' ' -f13)))
  done
  echo "$u $s"
}
TCK=$(getconf CLK_TCK)
RES=$WORK/res.tsv
for round in $(seq "$ROUNDS"); do
  i=0
  for size in $SIZES; do
    for c in $CONNS; do
      n=${#NAMES[@]}
      for k in $(seq 0 $((n - 1))); do
        t=${NAMES[$(((k + i + round) % n))]}
        url="http://127.0.0.1:${PORT[$t]}/$size"
        wrk -t2 -c"$c" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
        read -r u0 s0 < <(ticks "${PID[$t]}")
        out=$(wrk -t2 -c"$c" -d"${DURATION}s" "$url" 2>&1)
        read -r u1 s1 < <(ticks "${PID[$t]}")
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
        errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {e=1} END {print e+0}')
        awk -v r="$round" -v s="$size" -v c="$c" -v t="$t" -v n="$reqs" -v q="$rps" -v e="$errs" \
          -v u=$((u1 - u0)) -v y=$((s1 - s0)) -v k="$TCK" \
          'BEGIN {printf "%s\t%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%s\n", r, s, c, t, q, u / k * 1e6 / n, y / k * 1e6 / n, e}' >>"$RES"
        log "round $round $size c$c $t: $rps req/s"
      done
      i=$((i + 1))
    done
  done
done

echo "# benches/ab.sh $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "VARIANTS=\"$VARIANTS\" ROUNDS=$ROUNDS DURATION=$DURATION SIZES=\"$SIZES\" CONNS=\"$CONNS\""
echo
echo "| body | conns | target | req/s (median) | CPU µs/req median (user / sys) | per round µs/req | errors |"
echo "|---|---|---|---|---|---|---|"
python3 - "$RES" "${NAMES[@]}" <<'EOF'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = sys.argv[2:]
keys = []
for r in rows:
    k = (r[1], r[2])
    if k not in keys:
        keys.append(k)
for size, conns in keys:
    for t in names:
        rs = [r for r in rows if (r[1], r[2], r[3]) == (size, conns, t)]
        if not rs:
            continue
        rps = st.median(float(r[4]) for r in rs)
        us = [float(r[5]) + float(r[6]) for r in rs]
        u = st.median(float(r[5]) for r in rs)
        s = st.median(float(r[6]) for r in rs)
        errs = sum(int(r[7]) for r in rs)
        print(f"| {size} | {conns} | {t} | {rps:.0f} | {st.median(us):.1f} ({u:.1f} / {s:.1f}) | {', '.join(f'{x:.1f}' for x in us)} | {errs} |")
EOF
