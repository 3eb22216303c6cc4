#!/usr/bin/env bash
# Produces an envtest-style KUBEBUILDER_ASSETS folder (kube-apiserver + etcd) from Debian's own
# packages only, caches it outside the repository and prints its path on stdout (everything else
# goes to stderr), so that `export KUBEBUILDER_ASSETS=$(scripts/envtest/assets.sh)` works.
#
# Why build: Debian ships no kube-apiserver binary for bookworm, but it ships the full v1.20.2
# tree with its vendor/ folder as the source package `kubernetes`, which builds offline with
# Debian's Go 1.19. Two vendored modules must be swapped first: modern-go/reflect2 1.0.1 reads Go
# runtime internals that changed in Go 1.18 and panics as soon as a CRD is created; Debian's
# reflect2 1.0.2 fixes that, and json-iterator 1.1.12 is the release that goes with it.
# etcd comes from the `etcd-server` package, unpacked rather than installed so that no system
# etcd service is started on the machine.
set -euo pipefail

KUBE_VERSION=1.20.2
GO_PACKAGE=golang-1.19-go
GOROOT_DIR=/usr/lib/go-1.19
CACHE_ROOT="${ENVTEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cloud-instance-operator/envtest}"
DEST="$CACHE_ROOT/$KUBE_VERSION"
SRC_LIST=/etc/apt/sources.list.d/cloud-instance-operator-envtest-src

usage() {
  cat <<EOF
Usage: scripts/envtest/assets.sh [--force] [--help]

Prints the path of a folder holding kube-apiserver v$KUBE_VERSION and etcd 3.4, built from
Debian bookworm's own packages (no other download). The first run takes several minutes (it
compiles kube-apiserver); later runs print the cached folder at once.

  --force   rebuild even when the cached folder is complete
  --help    this text

Cache: \$ENVTEST_CACHE_DIR, else \${XDG_CACHE_HOME:-\$HOME/.cache}/cloud-instance-operator/envtest
(now: $CACHE_ROOT). Needs root (or sudo) for apt-get: it installs $GO_PACKAGE, make, rsync,
dpkg-dev and two Go library sources, and adds a deb-src entry beside the machine's Debian sources
($SRC_LIST.*).

Use: export KUBEBUILDER_ASSETS="\$(scripts/envtest/assets.sh)"; npm run test:real
EOF
}

force=false
for arg in "$@"; do
  case "$arg" in
    --help | -h) usage; exit 0 ;;
    --force) force=true ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "envtest-assets: $*" >&2; }

complete() { [[ -x "$DEST/kube-apiserver" && -x "$DEST/etcd" && -f "$DEST/VERSIONS" ]]; }

if ! $force && complete; then
  echo "$DEST"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { log "needs root or sudo for apt-get"; exit 1; }
  SUDO=(sudo)
fi

mkdir -p "$CACHE_ROOT"
# Two concurrent first runs (two test processes, two shells) must not build twice into one folder.
exec 9>"$CACHE_ROOT/.lock"
flock 9
if ! $force && complete; then
  echo "$DEST"
  exit 0
fi

# A deb-src twin of every Debian entry the machine already uses, so the source comes from the
# same mirror and suites as its binaries.
add_deb_src() {
  local f
  if [[ -e $SRC_LIST.sources || -e $SRC_LIST.list ]]; then return; fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f && $f != "$SRC_LIST.sources" ]] || continue
    grep -q '^URIs:.*debian' "$f" || continue
    sed -n '/^Types:/{s/^Types:.*/Types: deb-src/;p;d};p' "$f" | "${SUDO[@]}" tee -a "$SRC_LIST.sources" >/dev/null
    echo | "${SUDO[@]}" tee -a "$SRC_LIST.sources" >/dev/null
  done
  if [[ -f /etc/apt/sources.list ]] && grep -qE '^deb [^#]*debian' /etc/apt/sources.list; then
    grep -E '^deb [^#]*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
      "${SUDO[@]}" tee "$SRC_LIST.list" >/dev/null
  fi
  [[ -e $SRC_LIST.sources || -e $SRC_LIST.list ]] || { log "no Debian apt source found to mirror as deb-src"; exit 1; }
}

log "building kube-apiserver v$KUBE_VERSION and etcd into $DEST (several minutes, once)"
add_deb_src
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >&2
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$GO_PACKAGE" make rsync dpkg-dev \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >&2

work=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# Downloads land here; _apt cannot write into a root-only temp folder, which is only a warning.
chmod 755 "$work"
apt-get source -qq kubernetes >&2 2> >(grep -v 'unsandboxed' >&2)
apt-get download -qq etcd-server >&2 2> >(grep -v 'unsandboxed' >&2)
src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
[[ -n $src ]] || { log "apt-get source kubernetes unpacked nothing"; exit 1; }
grep -q "tag: v$KUBE_VERSION'" "$src/hack/lib/version.sh" ||
  { log "the Debian source is not Kubernetes v$KUBE_VERSION; update KUBE_VERSION in $0"; exit 1; }

for pkg in github.com/modern-go/reflect2 github.com/json-iterator/go; do
  rm -rf "${src:?}/vendor/$pkg"
  mkdir -p "$src/vendor/$pkg"
  find "/usr/share/gocode/src/$pkg" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' -o -name LICENSE \) \
    ! -name '*_test.go' -exec cp -L {} "$src/vendor/$pkg/" \;
done

log "compiling kube-apiserver (log: $work/build.log)"
started=$SECONDS
# `make WHAT=cmd/kube-apiserver` would first rerun every code generator over the whole tree
# (minutes); the source package already ships their output except the OpenAPI definitions, so
# only that generator runs, then the same build script make would call.
if ! (cd "$src" && export PATH="$GOROOT_DIR/bin:$PATH" GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 \
  GOCACHE="$work/gocache" GOPATH="$work/gopath" HOME="$work/home" &&
  make gen_openapi && hack/make-rules/build.sh cmd/kube-apiserver) >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  log "the kube-apiserver build failed"
  exit 1
fi
log "compiled in $((SECONDS - started)) s"

mkdir -p "$work/etcd-deb"
dpkg-deb -x etcd-server_*.deb "$work/etcd-deb"
staging="$DEST.tmp-$$"
rm -rf "$staging"
mkdir -p "$staging"
cp "$src/_output/bin/kube-apiserver" "$work/etcd-deb/usr/bin/etcd" "$staging/"
{
  echo "kube-apiserver: $("$staging/kube-apiserver" --version) (Debian source $(basename "$src"))"
  echo "etcd: $("$staging/etcd" --version | head -n1) (Debian $(basename etcd-server_*.deb .deb))"
  echo "go: $("$GOROOT_DIR/bin/go" version)"
} >"$staging/VERSIONS"
rm -rf "$DEST"
mv "$staging" "$DEST"
log "$(tr '\n' ';' <"$DEST/VERSIONS")"
echo "$DEST"
