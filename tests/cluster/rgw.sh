#!/usr/bin/env bash
# A real S3 server for the cluster tests: a one-node Ceph cluster (one monitor, one bluestore OSD
# on a sparse file) and a RADOS Gateway, all on 127.0.0.1, from Debian's packages
# (apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd).
#
#   tests/cluster/rgw.sh start DIR [PORT]   start it (state under DIR), create the test user and
#                                           print the environment the tests read (eval it)
#   tests/cluster/rgw.sh stop DIR           stop the daemons started by `start DIR` (by their pids)
#
# Inside the cluster authentication is off (it is loopback-only and throw-away); S3 clients sign
# with the fixed test keys below. The printed LLMSCOPE_TEST_S3_ENDPOINT is what tests look for.
set -euo pipefail

ACCESS_KEY=llmscope-test
SECRET_KEY=llmscope-test-secret
BUCKET=llmscope-test
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

die() { echo "rgw.sh: $*" >&2; exit 1; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${limit}s (logs in $D/log)"
    sleep 0.5
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

write_conf() {
  cat > "$D/conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc secure
ms client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
osd memory target = 1073741824
[mon.a]
mon data = $D/mon.a
[osd.0]
osd data = $D/osd.0
osd objectstore = bluestore
bluestore block path = $D/osd0.block
bluestore block create = true
bluestore block size = 4294967296
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw.a
CONF
}

start() {
  command -v radosgw >/dev/null || die "radosgw is not installed (apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd)"
  mkdir -p "$D"/{run,log,mon.a,osd.0,rgw.a}
  PORT=${PORT:-$(free_port)}; MON1=$(free_port); MON2=$(free_port); FSID=$(python3 -c "import uuid; print(uuid.uuid4())")
  write_conf
  cd "$D"
  ceph-authtool --create-keyring keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" --fsid "$FSID" monmap >/dev/null
  ceph-mon -c conf --mkfs -i a --monmap monmap --keyring keyring
  ceph-mon -c conf -i a -f >"$D/log/mon.out" 2>&1 & echo $! > "$D/run/pids"
  wait_for 60 "ceph-mon" ceph -c conf --connect-timeout 5 mon stat
  local uuid id
  uuid=$(python3 -c "import uuid; print(uuid.uuid4())"); id=$(ceph -c conf osd new "$uuid")
  ceph-osd -c conf -i "$id" --mkfs --osd-uuid "$uuid" >"$D/log/osd-mkfs.out" 2>&1
  ceph-osd -c conf -i "$id" -f >"$D/log/osd.out" 2>&1 & echo $! >> "$D/run/pids"
  wait_for 90 "ceph-osd" sh -c "ceph -c conf osd stat | grep -q '1 up'"
  radosgw -c conf -n client.rgw.a -f >"$D/log/rgw.out" 2>&1 & echo $! >> "$D/run/pids"
  wait_for 120 "radosgw" curl -sf "http://127.0.0.1:$PORT/"
  radosgw-admin -c conf user create --uid=llmscope-test --display-name=llmscope-test \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null
  # The tests' bucket (each test works under its own prefix), created with a SigV4-signed PUT.
  curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" -X PUT "http://127.0.0.1:$PORT/$BUCKET" || die "cannot create bucket $BUCKET"
  echo "export LLMSCOPE_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT"
  echo "export LLMSCOPE_TEST_S3_BUCKET=$BUCKET"
  echo "export LLMSCOPE_TEST_S3_ACCESS_KEY=$ACCESS_KEY"
  echo "export LLMSCOPE_TEST_S3_SECRET_KEY=$SECRET_KEY"
}

stop() {
  [ -f "$D/run/pids" ] || return 0
  local pid
  for pid in $(tac "$D/run/pids"); do kill "$pid" 2>/dev/null || true; done
  for pid in $(tac "$D/run/pids"); do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$D/run/pids"
}

[ $# -ge 2 ] || die "usage: $0 start|stop DIR [PORT]"
D=$(mkdir -p "$2" && cd "$2" && pwd); PORT=${3:-}
case "$1" in
  start) start ;;
  stop) stop ;;
  *) die "unknown command $1" ;;
esac
