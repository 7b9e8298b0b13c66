#!/usr/bin/env bash
# Builds the test images locally (there is no container registry here) and imports them
# into a containerd's k8s.io namespace, where CRI (kubelet, test/support/pods.ts) sees them.
#
#   images.sh ADDRESS [--cache DIR]
#   images.sh --archives [--cache DIR]   build only; print the three archives' paths (for
#                                        nodes whose containerd is not on this machine)
#
# ADDRESS: containerd socket, `unix:///path/containerd.sock` or a plain path.
# Images (one-layer OCI archives, uncompressed layer, reproducible: fixed mtimes and owners,
# so the same inputs always give the same digests):
#   registry.k8s.io/pause:3.6    /pause: tiny static C init (test/fixtures/images/tiny-init.c)
#                                that waits for SIGTERM/SIGINT and reaps children; user
#                                65535 like the upstream pause image. containerd's sandbox image.
#   nsdebug.test/busybox:1       Debian's static busybox with every applet linked
#                                (/bin/sh, /bin/ls, …), /etc/passwd, /marker.txt containing
#                                "nsdebug-marker"; cmd `sleep infinity`.
#   nsdebug.test/distroless:1    no shell, no busybox: only /app (tiny-init), /etc/passwd,
#                                /etc/group, /tmp, /marker.txt containing
#                                "nsdebug-distroless-marker"; entrypoint /app.
# Archives are cached in --cache (default $NSDEBUG_IMAGE_CACHE, else $NSDEBUG_CACHE/images, /var/cache/nsdebug/images)
# under a key hashed from every input (this script, the C source, the busybox binary, the
# compiler), so reruns skip the build; an image whose digest is already in containerd is
# not imported again. Prints the image names, one per line, on stdout.
#
# Needs: cc with static libc (gcc + libc6-dev), busybox-static, ctr (containerd).
set -euo pipefail

die() { echo "images.sh: $*" >&2; exit 1; }
log() { echo "images.sh: $*" >&2; }

[ $# -ge 1 ] || die "usage: images.sh ADDRESS|--archives [--cache DIR]"
ADDRESS=${1#unix://}
ARCHIVES_ONLY=
[ "$1" = --archives ] && ARCHIVES_ONLY=1
shift
CACHE=${NSDEBUG_IMAGE_CACHE:-${NSDEBUG_CACHE:-/var/cache/nsdebug}/images}
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE=${2:?}; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[ -n "$ARCHIVES_ONLY" ] || [ -S "$ADDRESS" ] || die "no containerd socket at $ADDRESS"

HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/../fixtures/images/tiny-init.c"
BUSYBOX=${NSDEBUG_BUSYBOX:-/bin/busybox}
[ -f "$SRC" ] || die "missing $SRC"
[ -x "$BUSYBOX" ] || die "no static busybox at $BUSYBOX: apt-get install -y busybox-static"
file_is_static() { ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }
file_is_static "$BUSYBOX" || die "$BUSYBOX is dynamically linked; install busybox-static"
command -v cc >/dev/null || die "no C compiler: apt-get install -y gcc libc6-dev"
[ -n "$ARCHIVES_ONLY" ] || command -v ctr >/dev/null || die "no ctr: apt-get install -y containerd"

ARCH=$(dpkg --print-architecture 2>/dev/null || true)
case "${ARCH:-$(uname -m)}" in
  amd64|x86_64) ARCH=amd64 ;;
  arm64|aarch64) ARCH=arm64 ;;
  *) ARCH=${ARCH:-$(uname -m)} ;;
esac

IMAGES="registry.k8s.io/pause:3.6 nsdebug.test/busybox:1 nsdebug.test/distroless:1"

key=$( {
  sha256sum "$0" "$SRC" "$BUSYBOX" | cut -d' ' -f1
  cc --version | head -n1
  echo "$ARCH"
} | sha256sum | cut -c1-16)
OUT="$CACHE/$key"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
TAR=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu)

# build_oci NAME ROOTFS CONFIG_BODY OUT.tar
# CONFIG_BODY is the JSON of the image config's "config" object (Cmd, Entrypoint, Env, …).
build_oci() {
  local name=$1 rootfs=$2 body=$3 out=$4
  w=$(mktemp -d "$CACHE/.build.XXXXXX")
  mkdir -p "$w/oci/blobs/sha256"
  "${TAR[@]}" -C "$rootfs" -cf "$w/layer.tar" .
  local ld ls
  ld=$(sha "$w/layer.tar"); ls=$(size "$w/layer.tar")
  mv "$w/layer.tar" "$w/oci/blobs/sha256/$ld"

  printf '{"created":"1970-01-01T00:00:00Z","architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"nsdebug test/support/images.sh"}]}' \
    "$ARCH" "$body" "$ld" >"$w/config.json"
  local cd cs
  cd=$(sha "$w/config.json"); cs=$(size "$w/config.json")
  mv "$w/config.json" "$w/oci/blobs/sha256/$cd"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cd" "$cs" "$ld" "$ls" >"$w/manifest.json"
  local md ms
  md=$(sha "$w/manifest.json"); ms=$(size "$w/manifest.json")
  mv "$w/manifest.json" "$w/oci/blobs/sha256/$md"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$md" "$ms" "$ARCH" "$name" "${name##*:}" >"$w/oci/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
  "${TAR[@]}" -C "$w/oci" -cf "$out" oci-layout index.json blobs
  echo "sha256:$md" >"$out.digest"
  rm -rf "$w"
  w=""
}

etc_files() { # ROOT
  mkdir -p "$1/etc"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n' >"$1/etc/group"
}

b="" otmp="" w=""
cleanup() {
  local t
  for t in "$b" "$otmp" "$w"; do [ -z "$t" ] || rm -rf "$t"; done
}
trap cleanup EXIT
build_all() {
  mkdir -p "$CACHE"
  b=$(mktemp -d "$CACHE/.rootfs.XXXXXX")
  cc -static -Os -s -Wall -Wextra -o "$b/tiny-init" "$SRC"
  file_is_static "$b/tiny-init" || die "cc -static produced a dynamic binary (is libc6-dev installed?)"
  otmp=$(mktemp -d "$CACHE/.out.XXXXXX")

  # pause
  local r="$b/pause"
  mkdir -p "$r"
  install -m 0755 "$b/tiny-init" "$r/pause"
  build_oci registry.k8s.io/pause:3.6 "$r" \
    '{"User":"65535:65535","Entrypoint":["/pause"],"WorkingDir":"/"}' "$otmp/pause.oci.tar"

  # busybox
  r="$b/busybox"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,root,home,var,run}
  install -d -m 1777 "$r/tmp"
  install -m 0755 "$BUSYBOX" "$r/bin/busybox"
  local applet
  while IFS= read -r applet; do
    if [ -z "$applet" ] || [ "$applet" = bin/busybox ]; then continue; fi
    mkdir -p "$r/$(dirname "$applet")"
    [ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
  done < <("$BUSYBOX" --list-full)
  [ -L "$r/bin/sh" ] || die "busybox has no sh applet"
  etc_files "$r"
  printf 'nsdebug-marker\n' >"$r/marker.txt"
  build_oci nsdebug.test/busybox:1 "$r" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sleep","infinity"],"WorkingDir":"/"}' \
    "$otmp/busybox.oci.tar"

  # distroless
  r="$b/distroless"
  mkdir -p "$r"/{proc,sys,dev,home/nonroot}
  install -d -m 1777 "$r/tmp"
  install -m 0755 "$b/tiny-init" "$r/app"
  etc_files "$r"
  printf 'nsdebug-distroless-marker\n' >"$r/marker.txt"
  build_oci nsdebug.test/distroless:1 "$r" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/app"],"WorkingDir":"/"}' \
    "$otmp/distroless.oci.tar"

  # Atomic publish; a concurrent build of the same key may have won the race (same bytes).
  if ! mv -T "$otmp" "$OUT" 2>/dev/null; then
    if [ -f "$OUT/distroless.oci.tar.digest" ]; then rm -rf "$otmp"; else rm -rf "$OUT" && mv -T "$otmp" "$OUT"; fi
  fi
  otmp=""
  rm -rf "$b"
}

if [ -f "$OUT/pause.oci.tar.digest" ] && [ -f "$OUT/busybox.oci.tar.digest" ] && [ -f "$OUT/distroless.oci.tar.digest" ]; then
  log "cached build $OUT"
else
  log "building images into $OUT"
  build_all
  # Older builds are dead weight.
  find "$CACHE" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' ! -name "$key" -exec rm -rf {} + 2>/dev/null || true
fi

if [ -n "$ARCHIVES_ONLY" ]; then
  for file in pause busybox distroless; do echo "$OUT/$file.oci.tar"; done
  exit 0
fi
CTR=(ctr --address "$ADDRESS" -n k8s.io)
present=$("${CTR[@]}" images ls 2>/dev/null | awk 'NR > 1 { print $1, $3 }')
for pair in pause:registry.k8s.io/pause:3.6 busybox:nsdebug.test/busybox:1 distroless:nsdebug.test/distroless:1; do
  file=${pair%%:*}
  name=${pair#*:}
  digest=$(cat "$OUT/$file.oci.tar.digest")
  if grep -qxF "$name $digest" <<<"$present"; then
    continue
  fi
  "${CTR[@]}" images import "$OUT/$file.oci.tar" >/dev/null
  "${CTR[@]}" images ls "name==$name" | awk 'NR > 1 { print $3 }' | grep -qxF "$digest" ||
    die "import of $name did not produce digest $digest"
  log "imported $name ($digest)"
done

for name in $IMAGES; do echo "$name"; done
