#!/usr/bin/env bash
# A real S3-compatible server: single-node Ceph (mon + OSD + RGW). The tests run it on loopback, in memory; the
# compose file runs the same script in Ceph's own image (quay.io/ceph/ceph), on disk.
#   scripts/s3-server.sh start DIR   -> starts it; writes DIR/env (LECTERN_TEST_S3_* variables) and prints it
#   scripts/s3-server.sh run DIR     -> starts it, then stays in the foreground while it serves (a container's
#                                       command; SIGTERM stops it)
#   scripts/s3-server.sh stop DIR
# Settings, from the environment:
#   LECTERN_S3_BIND         address RGW listens on (127.0.0.1; compose: 0.0.0.0)
#   LECTERN_S3_MON_PORT     the monitor's port (16789, or the next free one)
#   LECTERN_S3_PORT         RGW's port (17480, or the next free one)
#   LECTERN_S3_ACCESS_KEY, LECTERN_S3_SECRET_KEY   the S3 user's keys (the tests' own by default)
#   LECTERN_S3_OBJECTSTORE  memstore (in memory, gone when it stops: the tests) or bluestore (a sparse file of
#                           LECTERN_S3_SIZE_GB, default 50, under DIR: kept, and served again by the next start)
# Needs ceph-mon, ceph-osd and radosgw (Debian's, installed by .ci/run and `make setup`, or Ceph's image).
set -euo pipefail
trap 'echo "s3-server.sh: failed at line $LINENO (logs: ${dir:-?}/log)" >&2' ERR
action=${1:?usage: s3-server.sh start|run|stop DIR}
dir=$(realpath -m "${2:?usage: s3-server.sh start|run|stop DIR}")
bind=${LECTERN_S3_BIND:-127.0.0.1}
mon_port=${LECTERN_S3_MON_PORT:-16789}
rgw_port=${LECTERN_S3_PORT:-17480}
access_key=${LECTERN_S3_ACCESS_KEY:-lectern-test-access}
secret_key=${LECTERN_S3_SECRET_KEY:-lectern-test-secret}
objectstore=${LECTERN_S3_OBJECTSTORE:-memstore}
size_gb=${LECTERN_S3_SIZE_GB:-50}

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
case "$action" in start|run) ;; *) echo "unknown action $action" >&2; exit 2 ;; esac

# run: a SIGTERM (the container stopping) stops the daemons, whenever it comes, starting ones too
[ "$action" = run ] && trap 'stop; exit 0' TERM INT
serving() { curl -fsS "http://127.0.0.1:$rgw_port" >/dev/null 2>&1; }
if [ "$action" = start ] && [ -f "$dir/env" ] && serving; then
  cat "$dir/env"; exit 0  # already running
fi
stop 2>/dev/null || true
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {  # the given port, or the next free one after it
  local port=$1
  for _ in $(seq 1 50); do in_use "$port" || { echo "$port"; return; }; port=$((port + 1)); done
  echo "no free port near $1" >&2; exit 1
}
# Kept data (bluestore) is served again: the cluster made before, its ports as they were.
resume=false
if [ "$objectstore" = bluestore ] && [ -f "$dir/ceph.conf" ] && [ -d "$dir/mon/store.db" ]; then
  resume=true
  mon_port=$(sed -n -E 's/^mon host = v1:[^:]+:([0-9]+)$/\1/p' "$dir/ceph.conf")
else
  mon_port=$(free_port "$mon_port")
fi
rgw_port=$(free_port "$rgw_port")
conf="$dir/ceph.conf"
if [ "$resume" = false ]; then
  rm -rf "$dir"; mkdir -p "$dir"/{mon,osd,rgw,run,log}
  fsid=$(cat /proc/sys/kernel/random/uuid)
else
  fsid=$(sed -n -E 's/^fsid = (.*)$/\1/p' "$conf")
  rm -f "$dir"/run/* "$dir/env"  # env is written again once it serves
fi
if [ "$objectstore" = bluestore ]; then
  store="osd objectstore = bluestore
bluestore block path = $dir/osd-block
bluestore block create = true
bluestore block size = $((size_gb * 1024 * 1024 * 1024))
osd memory target = 939524096"
else
  store="osd objectstore = memstore
memstore device bytes = 2147483648"
fi
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
$store
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
rgw frontends = beast endpoint=$bind:$rgw_port
rgw data = $dir/rgw
CONF
start_osd() {
  # The OSD occasionally exits at start while a previous one on this machine is still releasing its ports: retry.
  for attempt in 1 2 3; do
    ceph-osd -c "$conf" -i 0 2>>"$dir/log/osd-start.err" && return
    [ "$attempt" = 3 ] && { echo "ceph-osd would not start; see $dir/log" >&2; exit 1; }
    sleep 2
  done
}
if [ "$resume" = false ]; then
  touch "$dir/keyring"
  monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" -i a
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  timeout 60 ceph -c "$conf" osd new "$osd_uuid" 0 >/dev/null
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
else
  ceph-mon -c "$conf" -i a
fi
start_osd
radosgw -c "$conf" -n client.rgw.a 2>/dev/null
for _ in $(seq 1 120); do
  serving && break
  sleep 0.5
done
serving || { echo "radosgw did not come up; see $dir/log" >&2; exit 1; }
# The user, once (a resumed cluster has it; keys given now that it lacks are added)
if user=$(timeout 60 radosgw-admin -c "$conf" user info --uid=lectern 2>/dev/null); then
  grep -q "\"access_key\": \"$access_key\"" <<<"$user" || timeout 60 radosgw-admin -c "$conf" key create \
    --uid=lectern --key-type=s3 --access-key="$access_key" --secret-key="$secret_key" >/dev/null
else
  timeout 60 radosgw-admin -c "$conf" user create --uid=lectern --display-name=Lectern \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
fi
cat > "$dir/env" <<ENV
LECTERN_TEST_S3_ENDPOINT=http://127.0.0.1:$rgw_port
LECTERN_TEST_S3_ACCESS_KEY=$access_key
LECTERN_TEST_S3_SECRET_KEY=$secret_key
ENV
cat "$dir/env"
if [ "$action" = run ]; then
  echo "serving S3 on $bind:$rgw_port until stopped" >&2
  while kill -0 "$(cat "$dir/run/client.rgw.a.pid")" 2>/dev/null; do sleep 5 & wait $!; done
  echo "radosgw exited; see $dir/log" >&2
  stop
  exit 1
fi
