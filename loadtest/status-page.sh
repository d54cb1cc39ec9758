#!/usr/bin/env bash
# The status page's figures (issue 14): idle RSS of skr8tr_server with its admin listener on,
# before any page, while pages stream (server-sent events), and after; the page's transfer
# size; its time to first render in headless Chromium (from navigation start to the first
# snapshot drawn, the page's `skr8tr-first-render` mark). One app of 3 replicas runs, so the
# snapshot is not empty. Writes loadtest/results/status-page.md.
#
#   bash loadtest/status-page.sh          # needs chromium and chromium-driver (Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cargo build --release --locked --bin skr8tr --bin skr8tr_server >&2
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d /tmp/skr8tr-page-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  pkill -f "$BIN/skr8tr example-service" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
T=28772; C=28771; H=28770; N=28775; A=28181; TA=28182
export SKR8TR_CONDUCTOR=127.0.0.1:$C SKR8TR_TOWER=127.0.0.1:$T SKR8TR_LOG=warn
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

"$BIN/skr8tr_server" --tower-listen 127.0.0.1:$T --conductor-listen 127.0.0.1:$C \
  --heartbeat-listen 127.0.0.1:$H --node-listen 127.0.0.1:$N --admin 127.0.0.1:$A \
  --tower-admin 127.0.0.1:$TA --metrics off --state-dir "$WORK/state" --stop-workloads-on-exit \
  2>"$WORK/server.log" &
SERVER=$!; PIDS+=($SERVER)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$A/healthz" >/dev/null && break; sleep 0.05; done
cat >"$WORK/app.skr8tr" <<EOF
app web
  exec "$BIN/skr8tr"
  args example-service
  port auto
  replicas 3
  health GET /healthz 200
EOF
"$BIN/skr8tr" up "$WORK/app.skr8tr" >/dev/null
for _ in $(seq 200); do
  [ "$("$BIN/skr8tr" status --json | python3 -c 'import json,sys; print(sum(r["state"]=="healthy" for r in json.load(sys.stdin)["replicas"]))')" = 3 ] && break
  sleep 0.05
done
sleep 5
idle=$(for _ in 1 2 3 4 5; do rss_kb $SERVER; sleep 0.5; done | median)

page_bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$A/")
snapshot_bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$A/status.json")
metrics_bytes=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$A/metrics")

# Headless Chromium over WebDriver: five loads, each timed to its first render; then one page
# left streaming for 20 s while the server's RSS is sampled.
python3 - "$A" "$WORK" "$SERVER" >"$WORK/browser.txt" <<'PY'
import json, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request
admin, work, server = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["value"]
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/status", timeout=1); break
    except Exception:
        time.sleep(0.05)
profile = tempfile.mkdtemp(dir=work)
args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1000", f"--user-data-dir={profile}"]
sid = call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome",
      "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}})["sessionId"]
def rss():
    with open(f"/proc/{server}/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("Rss:"))
times = []
for i in range(6):
    call("POST", f"/session/{sid}/url", {"url": f"http://127.0.0.1:{admin}/?load={i}"})
    for _ in range(200):
        t = call("POST", f"/session/{sid}/execute/sync", {"script":
            "const m = performance.getEntriesByName('skr8tr-first-render'); return m.length ? m[0].startTime : null;", "args": []})
        if t is not None:
            break
        time.sleep(0.02)
    if i > 0:  # the first load warms the browser's own caches
        times.append(t)
streaming = []
for _ in range(20):
    time.sleep(1)
    streaming.append(rss())
transferred = call("POST", f"/session/{sid}/execute/sync", {"script":
    "return performance.getEntriesByType('navigation')[0].transferSize;", "args": []})
call("DELETE", f"/session/{sid}")
driver.kill()
print(json.dumps({"first_render_ms": times, "streaming_rss_kb": streaming, "transfer": transferred}))
PY
after=$(sleep 3; for _ in 1 2 3 4 5; do rss_kb $SERVER; sleep 0.5; done | median)
read -r renders streaming transfer < <(python3 -c '
import json, statistics, sys
d = json.load(open(sys.argv[1]))
print(",".join(f"{t:.0f}" for t in d["first_render_ms"]), int(statistics.median(d["streaming_rss_kb"])), d["transfer"])
' "$WORK/browser.txt")
render_median=$(echo "$renders" | tr ',' '\n' | median)

OUT=loadtest/results/status-page.md
{
  echo "# The status page: RSS of skr8tr_server, transfer size, time to first render"
  echo
  echo "Run: $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)); commit \`$(git rev-parse --short HEAD)\`; $(chromium --version 2>/dev/null | head -1); load average before: $LOAD_BEFORE."
  echo
  echo '```'
  echo "bash loadtest/status-page.sh"
  echo '```'
  echo
  echo "skr8tr_server (Tower, Conductor, node agent) in release, admin listeners on (Conductor's with the status page, the Tower's), node metrics off, one app of 3 healthy replicas."
  echo
  echo "| figure | value |"
  echo "|---|---|"
  echo "| idle RSS, admin listener and status page on, no page open (median of 5) | $((idle)) KiB |"
  echo "| RSS while a page streams (median over 20 s) | $streaming KiB |"
  echo "| RSS 3 s after the page closed (median of 5) | $((after)) KiB |"
  echo "| page (\`/\`: HTML, script and style, uncompressed) | $page_bytes bytes |"
  echo "| page transfer as Chromium counts it (headers included) | $transfer bytes |"
  echo "| one snapshot (\`/status.json\`, the size of each server-sent event) | $snapshot_bytes bytes |"
  echo "| \`/metrics\` | $metrics_bytes bytes |"
  echo "| time to first render: navigation start to the first snapshot drawn (median of 5 loads) | $render_median ms (each: $renders) |"
} >"$OUT"
cat "$OUT"
