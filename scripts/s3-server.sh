#!/usr/bin/env bash
# A real S3-compatible server for the integration tests: single-node Ceph (mon + memstore OSD + RGW) on loopback.
#   scripts/s3-server.sh start DIR   -> starts it; writes DIR/env (LECTERN_TEST_S3_* variables) and prints it
#   scripts/s3-server.sh stop DIR
# Ports: LECTERN_S3_MON_PORT (default 16789) and LECTERN_S3_PORT (default 17480), or the next free ones.
# Needs Debian's radosgw, ceph-mon, ceph-osd (installed by .ci/run and `make setup`).
set -euo pipefail
trap 'echo "s3-server.sh: failed at line $LINENO (logs: ${dir:-?}/log)" >&2' ERR
action=${1:?usage: s3-server.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: s3-server.sh start|stop DIR}")
mon_port=${LECTERN_S3_MON_PORT:-16789}
rgw_port=${LECTERN_S3_PORT:-17480}
access_key=lectern-test-access
secret_key=lectern-test-secret

stop() {
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$dir"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile"); kill -9 "$pid" 2>/dev/null || true; rm -f "$pidfile"
  done
}

if [ "$action" = stop ]; then stop; exit 0; fi
[ "$action" = start ] || { echo "unknown action $action" >&2; exit 2; }

if [ -f "$dir/env" ] && curl -fsS "http://127.0.0.1:$rgw_port" >/dev/null 2>&1; then
  cat "$dir/env"; exit 0  # already running
fi
stop 2>/dev/null || true
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {  # the given port, or the next free one after it
  local port=$1
  for _ in $(seq 1 50); do in_use "$port" || { echo "$port"; return; }; port=$((port + 1)); done
  echo "no free port near $1" >&2; exit 1
}
mon_port=$(free_port "$mon_port")
rgw_port=$(free_port "$rgw_port")
rm -rf "$dir"; mkdir -p "$dir"/{mon,osd,rgw,run,log}
fsid=$(cat /proc/sys/kernel/random/uuid)
conf="$dir/ceph.conf"
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
CONF
touch "$dir/keyring"
monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
timeout 60 ceph -c "$conf" osd new "$osd_uuid" 0 >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
# The OSD occasionally exits at start while a previous one on this machine is still releasing its ports: retry.
for attempt in 1 2 3; do
  ceph-osd -c "$conf" -i 0 2>>"$dir/log/osd-start.err" && break
  [ "$attempt" = 3 ] && { echo "ceph-osd would not start; see $dir/log" >&2; exit 1; }
  sleep 2
done
radosgw -c "$conf" -n client.rgw.a 2>/dev/null
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$rgw_port" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$rgw_port" >/dev/null || { echo "radosgw did not come up; see $dir/log" >&2; exit 1; }
timeout 60 radosgw-admin -c "$conf" user create --uid=lectern --display-name=Lectern \
  --access-key="$access_key" --secret-key="$secret_key" >/dev/null
cat > "$dir/env" <<ENV
LECTERN_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
LECTERN_TEST_S3_ACCESS_KEY=$access_key
LECTERN_TEST_S3_SECRET_KEY=$secret_key
ENV
cat "$dir/env"
