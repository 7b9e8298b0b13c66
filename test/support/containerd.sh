#!/usr/bin/env bash
# A private containerd (Debian's containerd + runc + CNI plugins) for tests, started and
# stopped by hand: these machines have no systemd (see ../shared/ENVIRONMENT.md).
#
# Interface (used by the integration tier's global setup/teardown and by the e2e cluster):
#
#   containerd.sh start DIR [--subnet CIDR] [--bridge NAME] [--systemd-cgroup true|false]
#                           [--log-level LEVEL] [--socket PATH]
#       Starts containerd in the background with everything under DIR: root, state, runc
#       root, sockets, CNI config and IPAM data; pid in DIR/containerd.pid, log (appended)
#       in DIR/containerd.log, settings in DIR/instance.env. Waits until the socket answers
#       and the CRI plugin is loaded. Idempotent: when DIR's containerd is already running,
#       it only prints the address. The last stdout line is
#           CONTAINERD_ADDRESS=unix://DIR/containerd.sock
#       --socket puts the socket at PATH instead (the e2e node: /run/containerd/containerd.sock,
#       where a real node has it); DIR remembers it for stop and status.
#       Defaults: --subnet 10.99.0.0/16, --bridge nsdbg-int0 (also the CNI network name,
#       at most 15 characters), --systemd-cgroup false (kubelet's cgroupfs driver),
#       --log-level info. Two instances need different DIRs, subnets and bridges.
#       The CRI config is the one measured to work here: restrict_oom_score_adj (there is
#       no CAP_SYS_RESOURCE), netns mounts under the state dir, sandbox image
#       registry.k8s.io/pause:3.6 (build it with images.sh: there is no registry), runc v2.
#
#   containerd.sh stop DIR [--purge]
#       Kills every task of DIR's containerd (all its namespaces) and deletes its containers,
#       stops containerd by PID (SIGTERM, then SIGKILL after 10 s), kills leftover shims and
#       container processes, unmounts everything under DIR, removes the cgroup directories
#       of its containers and pods in every hierarchy (pod UIDs are taken from its log, so
#       pods that kubelet or the test helpers already removed are covered too; shared
#       ancestors such as /kubepods are removed only when empty and created after start),
#       deletes the bridge, the iptables rules and chains CNI made for its network, and its
#       /var/lib/cni entries. --purge also deletes DIR. Safe to run twice, or on a DIR whose
#       containerd died.
#
#   containerd.sh status DIR
#       Exit 0 and print the address when DIR's containerd is running and answering.
#
# Needs root and: apt-get install -y --no-install-recommends containerd runc
#                 containernetworking-plugins busybox-static   (plus iptables, iproute2)
set -euo pipefail

die() { echo "containerd.sh: $*" >&2; exit 1; }
log() { echo "containerd.sh: $*" >&2; }

usage() {
  sed -n '4,37p' "$0" | cut -c3- >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
DIR=$2
shift 2
case "$DIR" in
  /*) ;;
  *) DIR="$(pwd)/$DIR" ;;
esac
DIR="${DIR%/}"
if [ -z "$DIR" ] || [ "$DIR" = / ]; then die "refusing to use / as DIR"; fi

PIDFILE="$DIR/containerd.pid"
LOGFILE="$DIR/containerd.log"
ENVFILE="$DIR/instance.env"
# the socket: DIR/containerd.sock unless start was given --socket (remembered in ENVFILE)
SOCK=$(sed -n 's/^NSDBG_SOCKET=//p' "$ENVFILE" 2>/dev/null || true)
SOCK=${SOCK:-$DIR/containerd.sock}
CONFIG="$DIR/config.toml"

# cgroup mount points (v1 controllers, named hierarchies, cgroup2), one per line.
cgroup_mounts() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | sort -u
}

# The cgroup ancestors that containers of this containerd may create; the ones that do not
# exist at start are removed at stop when they are empty again.
ANCESTORS="kubepods/besteffort kubepods/burstable kubepods k8s.io
kubepods.slice/kubepods-besteffort.slice kubepods.slice/kubepods-burstable.slice kubepods.slice"

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The PID of DIR's containerd, when it is alive (checked against its command line, so a
# recycled PID is never taken for ours).
our_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  pid_alive "$pid" || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--config $CONFIG " || return 1
  echo "$pid"
}

answers() { ctr --address "$SOCK" version >/dev/null 2>&1; }

valid_cidr() { [[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$ ]]; }
valid_bridge() { [[ $1 =~ ^[A-Za-z0-9_.-]{1,15}$ ]]; }

# ---------------------------------------------------------------------------------------
start() {
  local subnet=10.99.0.0/16 bridge=nsdbg-int0 systemd_cgroup=false level=info
  while [ $# -gt 0 ]; do
    case "$1" in
      --subnet) subnet=${2:?}; shift 2 ;;
      --bridge) bridge=${2:?}; shift 2 ;;
      --systemd-cgroup) systemd_cgroup=${2:?}; shift 2 ;;
      --log-level) level=${2:?}; shift 2 ;;
      --socket) SOCK=${2:?}; shift 2 ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  valid_cidr "$subnet" || die "start: --subnet must be an IPv4 CIDR, got '$subnet'"
  valid_bridge "$bridge" || die "start: --bridge must be 1-15 characters [A-Za-z0-9_.-], got '$bridge'"
  case "$systemd_cgroup" in true|false) ;; *) die "start: --systemd-cgroup must be true or false" ;; esac
  [ "$(id -u)" = 0 ] || die "start: must run as root"
  for b in containerd ctr runc containerd-shim-runc-v2 iptables ip; do
    command -v "$b" >/dev/null || die "start: $b not found; apt-get install -y --no-install-recommends containerd runc containernetworking-plugins busybox-static"
  done
  for b in bridge host-local portmap loopback; do
    [ -x "/usr/lib/cni/$b" ] || die "start: CNI plugin /usr/lib/cni/$b missing; apt-get install -y containernetworking-plugins"
  done

  if pid=$(our_pid) && answers; then
    if [ -f "$ENVFILE" ]; then
      # shellcheck disable=SC1090
      . "$ENVFILE"
      if [ "$NSDBG_SUBNET" != "$subnet" ] || [ "$NSDBG_BRIDGE" != "$bridge" ]; then
        log "already running (pid $pid) with subnet $NSDBG_SUBNET bridge $NSDBG_BRIDGE; stop it to change them"
      fi
    fi
    log "already running (pid $pid)"
    echo "CONTAINERD_ADDRESS=unix://$SOCK"
    return 0
  fi
  if pid=$(our_pid); then
    # Alive but not answering: give it a moment (it may be starting), else restart it.
    for _ in $(seq 1 50); do answers && break; sleep 0.1; done
    if answers; then echo "CONTAINERD_ADDRESS=unix://$SOCK"; return 0; fi
    log "pid $pid does not answer on $SOCK; restarting it"
    kill -KILL "$pid" 2>/dev/null || true
  fi

  # Refuse to share a bridge or a subnet with another instance's bridge.
  if ip link show "$bridge" >/dev/null 2>&1 && [ -f "$ENVFILE" ] && ! grep -q "^NSDBG_BRIDGE=$bridge\$" "$ENVFILE"; then
    log "warning: bridge $bridge already exists (another instance?)"
  fi

  mkdir -p "$DIR"/{root,state,runc,cni/net.d,cni/ipam,cni/cache}
  chmod 711 "$DIR"

  # Which shared cgroup ancestors existed before us (kept at stop).
  if [ ! -f "$DIR/cgroups.preexisting" ]; then
    : >"$DIR/cgroups.preexisting"
    for m in $(cgroup_mounts); do
      for a in $ANCESTORS; do
        [ -d "$m/$a" ] && echo "$m/$a" >>"$DIR/cgroups.preexisting"
      done
    done
  fi
  [ -f "$DIR/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$DIR/ip_forward.orig"

  cat >"$ENVFILE" <<EOF
NSDBG_SUBNET=$subnet
NSDBG_BRIDGE=$bridge
NSDBG_NETWORK=$bridge
NSDBG_SYSTEMD_CGROUP=$systemd_cgroup
NSDBG_SOCKET=$SOCK
EOF
  mkdir -p "$(dirname "$SOCK")"

  # CNI: one bridge network; pods get an address from SUBNET, the bridge is the gateway.
  rm -f "$DIR"/cni/net.d/*
  cat >"$DIR/cni/net.d/10-$bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/cni/ipam",
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

  cat >"$CONFIG" <<EOF
# Written by test/support/containerd.sh; see ../shared/ENVIRONMENT.md for why each line.
version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "$level"

[plugins."io.containerd.grpc.v1.cri"]
  # No CAP_SYS_RESOURCE here: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  sandbox_image = "registry.k8s.io/pause:3.6"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = $systemd_cgroup
        Root = "$DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1
EOF

  rm -f "$SOCK" "$SOCK.ttrpc"
  echo "=== containerd.sh start $(date -Is) ===" >>"$LOGFILE"
  # setsid: its own session, so a ^C to the test runner does not reach it; the
  # teardown stops it by PID.
  setsid containerd --config "$CONFIG" </dev/null >>"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  local pid
  pid=$(cat "$PIDFILE")

  local ok=
  for _ in $(seq 1 300); do
    if ! pid_alive "$pid"; then
      tail -n 30 "$LOGFILE" >&2
      die "containerd exited during start-up (log: $LOGFILE)"
    fi
    if answers && ctr --address "$SOCK" plugins ls 2>/dev/null | grep -E '^io\.containerd\.grpc\.v1 +cri ' | grep -qE ' ok *$'; then
      ok=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    tail -n 30 "$LOGFILE" >&2
    die "containerd did not answer on $SOCK within 30 s (log: $LOGFILE)"
  fi
  log "started pid $pid, subnet $subnet, bridge $bridge"
  echo "CONTAINERD_ADDRESS=unix://$SOCK"
}

# ---------------------------------------------------------------------------------------
# Cgroup paths (cgroupfs syntax, relative to each hierarchy) of DIR's containers, from the
# running containerd and from the bundles still on disk; remembered in DIR/cgroups.list.
collect_cgroup_paths() {
  local ns id
  touch "$DIR/cgroups.list" "$DIR/ids.list"
  if answers; then
    for ns in $(ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
      for id in $(ctr --address "$SOCK" -n "$ns" containers ls -q 2>/dev/null); do
        echo "$id" >>"$DIR/ids.list"
        ctr --address "$SOCK" -n "$ns" containers info "$id" 2>/dev/null |
          grep -o '"cgroupsPath": *"[^"]*"' | sed 's/.*: *"\(.*\)"/\1/' >>"$DIR/cgroups.list" || true
      done
    done
  fi
  find "$DIR/state" -path '*/io.containerd.runtime.v2.task/*/config.json' -print0 2>/dev/null |
    xargs -0 -r grep -ho '"cgroupsPath": *"[^"]*"' | sed 's/.*: *"\(.*\)"/\1/' >>"$DIR/cgroups.list" || true
  sort -u -o "$DIR/cgroups.list" "$DIR/cgroups.list"
  # Sandbox IDs this containerd ever created (CNI caches results per sandbox ID).
  if [ -f "$LOGFILE" ]; then
    grep -o 'returns sandbox id \\"[0-9a-f]*\\"' "$LOGFILE" | grep -o '[0-9a-f]\{64\}' >>"$DIR/ids.list" || true
  fi
  sort -u -o "$DIR/ids.list" "$DIR/ids.list"
}

# slice:prefix:name (systemd driver) → the directory it stands for; cgroupfs paths as is.
cgroup_dir_of() {
  local p=$1
  if [[ $p == *:*:* ]]; then
    local slice=${p%%:*} rest=${p#*:}
    local prefix=${rest%%:*} name=${rest#*:}
    local dir="" acc=""
    local IFS=-
    # kubepods-besteffort-pod1.slice → kubepods.slice/kubepods-besteffort.slice/...
    local part
    for part in ${slice%.slice}; do
      acc=${acc:+$acc-}$part
      dir="$dir/$acc.slice"
    done
    echo "$dir/$prefix-$name.scope"
  else
    echo "/${p#/}"
  fi
}

# Kill what is left in a cgroup subtree and remove its directories, deepest first.
remove_cgroup_tree() {
  local top=$1 d procs
  [ -d "$top" ] || return 0
  for _ in $(seq 1 50); do
    while IFS= read -r d; do
      # (cgroupfs files report size 0, so read them rather than test -s)
      procs=$(cat "$d/cgroup.procs" 2>/dev/null || true)
      # shellcheck disable=SC2086 # a list of PIDs
      [ -z "$procs" ] || kill -KILL $procs 2>/dev/null || true
      rmdir "$d" 2>/dev/null || true
    done < <(find "$top" -depth -type d 2>/dev/null)
    [ -d "$top" ] || return 0
    sleep 0.1
  done
  log "warning: could not remove cgroup $top"
}

stop() {
  local purge=
  while [ $# -gt 0 ]; do
    case "$1" in
      --purge) purge=1; shift ;;
      *) die "stop: unknown option $1" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "stop: must run as root"
  if [ ! -d "$DIR" ]; then
    log "nothing to stop: $DIR does not exist"
    return 0
  fi
  local NSDBG_BRIDGE="" NSDBG_NETWORK=""
  # shellcheck disable=SC1090
  [ -f "$ENVFILE" ] && . "$ENVFILE"

  local pid=""
  pid=$(our_pid) || pid=""

  collect_cgroup_paths

  # 1. Kill every task and delete every container, in every namespace.
  if [ -n "$pid" ] && answers; then
    local ns ids id
    for ns in $(ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
      ids=$(ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null || true)
      for id in $ids; do
        ctr --address "$SOCK" -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
      done
      for id in $ids; do
        ctr --address "$SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
      done
      for id in $(ctr --address "$SOCK" -n "$ns" containers ls -q 2>/dev/null); do
        ctr --address "$SOCK" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
      done
    done
  fi

  # 2. Stop containerd by PID.
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then
      log "containerd $pid ignored SIGTERM for 10 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDFILE"

  # 3. Leftover shims of this instance (their command line names our socket).
  local p args
  for p in /proc/[0-9]*; do
    args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case "$args" in
      *containerd-shim*" -address $SOCK "*|*containerd-shim*" -address $SOCK") kill -KILL "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done

  # 4. Unmount everything under DIR, deepest first (rootfs, shm, netns files).
  local m
  for _ in 1 2 3; do
    local mounts
    mounts=$(awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
    [ -z "$mounts" ] && break
    while IFS= read -r m; do
      m=${m//\\040/ }
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    done <<<"$mounts"
  done

  # 5. Cgroups: containers, then their pods, then shared ancestors created after start.
  local mounts_cg path dir uid u_ parent
  mounts_cg=$(cgroup_mounts)
  local pods=""
  while IFS= read -r path; do
    [ -n "$path" ] || continue
    dir=$(cgroup_dir_of "$path")
    for m in $mounts_cg; do remove_cgroup_tree "$m$dir"; done
    parent=${dir%/*}
    case "$parent" in */pod*|*-pod*.slice) pods="$pods $parent" ;; esac
  done <"$DIR/cgroups.list"
  # Pods this containerd ever ran (its log names every sandbox's pod UID).
  if [ -f "$LOGFILE" ]; then
    # shellcheck disable=SC2013 # one UID per line, no spaces
    for uid in $(grep -o 'RunPodSandbox for &PodSandboxMetadata{Name:[^,]*,Uid:[^,]*' "$LOGFILE" | sed 's/.*Uid://' | sort -u); do
      [[ $uid =~ ^[A-Za-z0-9-]+$ ]] || continue
      u_=${uid//-/_}
      pods="$pods /kubepods/pod$uid /kubepods/besteffort/pod$uid /kubepods/burstable/pod$uid"
      pods="$pods /kubepods.slice/kubepods-pod$u_.slice"
      pods="$pods /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod$u_.slice"
      pods="$pods /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$u_.slice"
    done
  fi
  for dir in $pods; do
    for m in $mounts_cg; do remove_cgroup_tree "$m$dir"; done
  done
  local a
  for m in $mounts_cg; do
    for a in $ANCESTORS; do
      [ -d "$m/$a" ] || continue
      grep -qxF "$m/$a" "$DIR/cgroups.preexisting" 2>/dev/null && continue
      rmdir "$m/$a" 2>/dev/null || true
    done
  done

  # 6. Network: the bridge, CNI's iptables rules and chains for our network, its caches.
  if [ -n "$NSDBG_BRIDGE" ]; then
    ip link del "$NSDBG_BRIDGE" 2>/dev/null || true
  fi
  if [ -n "$NSDBG_NETWORK" ]; then
    local t rule chains c
    for t in nat filter mangle; do
      chains=""
      # Rules CNI tagged with our network name (ipMasq: `name: "NET" id: "…"`,
      # portmap: `dnat name: "NET" id: "…"`); their CNI-… targets are per-container chains.
      while IFS= read -r rule; do
        [ -n "$rule" ] || continue
        c=$(sed -n 's/.* -j \(CNI-[A-Za-z0-9-]*\).*/\1/p' <<<"$rule")
        case "$c" in CNI-HOSTPORT-*|"") ;; *) chains="$chains $c" ;; esac
        eval "iptables -w -t $t ${rule/#-A /-D }" 2>/dev/null || true
      done < <(iptables -w -t "$t" -S 2>/dev/null | grep -F "name: \\\"$NSDBG_NETWORK\\\"" || true)
      for c in $chains; do
        iptables -w -t "$t" -F "$c" 2>/dev/null || true
        iptables -w -t "$t" -X "$c" 2>/dev/null || true
      done
    done
    rm -f /var/lib/cni/results/"$NSDBG_NETWORK"-* 2>/dev/null || true
    # containerd also runs CNI's loopback plugin per sandbox, as network "cni-loopback".
    while IFS= read -r id; do
      [ -n "$id" ] && rm -f /var/lib/cni/results/cni-loopback-"$id"-lo
    done <"$DIR/ids.list"
    rm -rf "/var/lib/cni/networks/$NSDBG_NETWORK" "$DIR/cni/ipam"/* 2>/dev/null || true
    rmdir /var/lib/cni/results /var/lib/cni/networks /var/lib/cni 2>/dev/null || true
  fi
  # ip_forward: the bridge plugin turns it on; restore it when no other containerd runs.
  if [ -f "$DIR/ip_forward.orig" ]; then
    if ! pgrep -x containerd >/dev/null; then
      cat "$DIR/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
    fi
  fi

  # 7. containerd's fixed directories under /run, when nothing else uses them.
  for d in /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc \
           /run/containerd/io.containerd.runtime.v2.task/k8s.io /run/containerd/io.containerd.runtime.v2.task \
           /run/containerd; do
    rmdir "$d" 2>/dev/null || true
  done

  rm -f "$DIR/cgroups.list" "$DIR/ids.list" "$DIR/cgroups.preexisting" "$DIR/ip_forward.orig" "$SOCK" "$SOCK.ttrpc"
  if [ -n "$purge" ]; then
    if awk -v d="$DIR/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
      log "warning: mounts remain under $DIR; not deleting it"
    else
      rm -rf "$DIR"
    fi
  fi
  log "stopped $DIR"
}

status() {
  if our_pid >/dev/null && answers; then
    echo "CONTAINERD_ADDRESS=unix://$SOCK"
    return 0
  fi
  echo "containerd in $DIR is not running" >&2
  return 1
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status "$@" ;;
  *) usage ;;
esac
