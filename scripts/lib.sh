# shellcheck shell=bash
# Shared helpers for scripts/up and scripts/test. Source it; do not run it.
#
# Everything here is idempotent and cheap when the work is already done, so the
# scripts can be re-run freely on a dev box and on a fresh CI machine alike.

set -euo pipefail

INSTANODE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_BIN=/usr/lib/postgresql/15/bin
PGVECTOR_VERSION=0.8.0
# Shared by every data dir: the pgvector build is machine-wide anyway.
INSTANODE_CACHE_DIR="${INSTANODE_CACHE_DIR:-/var/cache/instanode}"

export DEBIAN_FRONTEND=noninteractive

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Random lowercase hex (2*N chars). Hex keeps secrets safe to embed in URLs and TOML.
# pidfile_alive FILE: the process named in FILE runs.
pidfile_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pidfile WHAT FILE: stops the process named in FILE, if it runs.
stop_pidfile() {
    if pidfile_alive "$2"; then
        log "stopping $1"
        terminate "$(cat "$2")"
    fi
}

# terminate PID: SIGTERM, up to 10 s for the process to exit, then SIGKILL.
terminate() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

random_hex() {
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Print the secret stored in FILE, creating it (NBYTES random bytes as hex) on first use.
# Secrets persist so restarts keep working against the existing cluster and sealed data.
secret() {
    local file=$1 nbytes=${2:-24}
    if [[ ! -s $file ]]; then
        mkdir -p "$(dirname "$file")"
        chmod 700 "$(dirname "$file")"
        (umask 077 && random_hex "$nbytes" >"$file.tmp" && mv "$file.tmp" "$file")
    fi
    chmod 600 "$file"
    tr -d '\n' <"$file"
}

abs_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}

target_dir() {
    local t=${CARGO_TARGET_DIR:-$INSTANODE_ROOT/target}
    [[ $t = /* ]] || t=$INSTANODE_ROOT/$t
    printf '%s\n' "$t"
}

# ---------------------------------------------------------------------------
# Debian packages. Every need is checked on its own and installs only what is missing, so
# a machine's own toolchains (a NodeSource Node.js, a Docker engine, a pyenv Python) are
# used as they are, never replaced or conflicted with.
# ---------------------------------------------------------------------------

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

have() { command -v "$1" >/dev/null 2>&1; }

# Every package packages_needed may name: preflight checks that bare Debian 12 can install
# them all together.
ALL_PACKAGES=(curl ca-certificates iproute2 procps git
    postgresql-15 postgresql-server-dev-15 build-essential dpkg-dev
    redis-server python3 python3-venv docker.io iptables debootstrap busybox-static
    chromium nodejs nginx-light docker-registry pebble openssl)

# packages_needed NEED...: the Debian packages this machine lacks for each NEED, one a line.
#   base      curl (with CA certificates), ip, pgrep, git
#   postgres  PostgreSQL 15 and what building pgvector takes (PG_BIN is Debian's layout)
#   redis     redis-server and redis-cli
#   python    a python3 that can make virtualenvs
#   docker    dockerd, iptables (the app firewall), and debootstrap and a static busybox for the local base images
#   browser   chromium, and node to drive it (npm is not needed: see ensure_browser)
#   nginx     nginx, for the proxy benchmark and the replicas test's load balancer
#   registry  Debian's image registry, for prebuilt-image deploys
#   acme      pebble (an ACME test CA with its DNS test server) and openssl, for the HTTPS tests
packages_needed() {
    local need p
    for need; do
        case $need in
            base)
                have curl || echo curl
                [[ -s /etc/ssl/certs/ca-certificates.crt ]] || echo ca-certificates
                have ip || echo iproute2
                have pgrep || echo procps
                have git || echo git
                ;;
            postgres)
                for p in postgresql-15 postgresql-server-dev-15 build-essential dpkg-dev; do
                    pkg_installed "$p" || echo "$p"
                done
                ;;
            redis) have redis-server && have redis-cli || echo redis-server ;;
            python)
                have python3 || echo python3
                python3 -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv
                ;;
            docker)
                have dockerd || echo docker.io
                have iptables || echo iptables
                have debootstrap || echo debootstrap
                # The busybox image copies /bin/busybox: it must be the static build.
                pkg_installed busybox-static || echo busybox-static
                ;;
            browser)
                have chromium || echo chromium
                have node || echo nodejs
                ;;
            nginx) have nginx || echo nginx-light ;;
            registry) have docker-registry || echo docker-registry ;;
            acme)
                have pebble && have pebble-challtestsrv || echo pebble
                have openssl || echo openssl
                ;;
            *) die "packages_needed: unknown need $need" ;;
        esac
    done | awk '!seen[$0]++'
}

# needs_of PURPOSE: what each script needs (up, test, bench).
needs_of() {
    case $1 in
        up) echo base postgres redis python docker ;;
        test) echo base postgres redis python docker browser nginx registry acme ;;
        bench) echo base postgres redis python docker browser nginx registry acme ;;
        *) die "needs_of: unknown purpose $1" ;;
    esac
}

# wait_for_apt: waits while another apt-get or dpkg runs (a hand-started install, or the
# other script on a fresh box), instead of failing on its lock halfway through.
wait_for_apt() {
    local i
    for ((i = 0; i < 1200; i++)); do
        pgrep -x 'apt-get|apt|dpkg' >/dev/null 2>&1 || return 0
        ((i)) || log "waiting for another apt-get/dpkg run to finish"
        sleep 0.5
    done
    die "apt-get/dpkg still running after 10 minutes"
}

APT_LISTS_REFRESHED=

# apt_simulate [APT_OPTION...] -- PKG...: apt could install PKG... together (nothing is
# installed). Fresh images often have empty package lists: a failed resolution refreshes them
# once and tries again. On failure prints what apt said and which packages cannot go in.
apt_simulate() {
    local opts=() out
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    (($#)) || return 0
    out=$(apt-get "${opts[@]}" install -s -q "$@" 2>&1) && return 0
    if [[ -z $APT_LISTS_REFRESHED ]]; then
        log "refreshing apt's package lists"
        apt-get update -q >&2 || true
        APT_LISTS_REFRESHED=1
        out=$(apt-get "${opts[@]}" install -s -q "$@" 2>&1) && return 0
    fi
    local p culprits=()
    for p; do apt-get "${opts[@]}" install -s -qq "$p" >/dev/null 2>&1 || culprits+=("$p"); done
    printf 'error: apt cannot install %s%s\n' "${culprits[*]:-these packages together: $*}" \
        "${APT_WHERE:-}" >&2
    # apt names the packages in the way: "nodejs : Conflicts: npm", "Unable to locate package x".
    grep -E '^ [^ ].* : |^E: ' <<<"$out" | sed 's/^/  apt: /' >&2
    return 1
}

# apt_install PKG...: installs PKG... that are not installed yet, after checking that apt
# can. Packaged services are not started: the scripts run private servers only.
apt_install() {
    local missing=() p
    for p; do pkg_installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    wait_for_apt
    APT_WHERE=" on this machine" apt_simulate -- "${missing[@]}" ||
        die "cannot install what the scripts need (scripts/preflight checks every need)"
    log "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d placed=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && placed=1
    fi
    # Keep our createcluster.conf on postgresql-common's first install (see ensure_postgres).
    UCF_FORCE_CONFFOLD=1 apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" ||
        { ((placed)) && rm -f "$policy"; die "could not install ${missing[*]} (see apt's output above)"; }
    ((placed)) && rm -f "$policy"
    return 0
}

# ensure_packages NEED...: installs what this machine lacks for each NEED.
ensure_packages() {
    local pkgs
    mapfile -t pkgs < <(packages_needed "$@")
    apt_install "${pkgs[@]}"
}

# preflight PURPOSE: checks, before anything is installed, that every install PURPOSE's
# script may make can succeed: all the packages the scripts may ever install resolve
# together on a bare Debian 12, the ones this machine lacks resolve against what it has,
# and the rest (Rust, trixie's nats-server, Node.js's version) is in order. Fails naming
# the package in the way.
preflight() {
    local purpose=$1 needs pkgs empty rc=0
    read -ra needs < <(needs_of "$purpose")
    have cargo && have rustup ||
        die "Rust is missing: install it with rustup (https://rustup.rs), then run this again"
    [[ -r /etc/debian_version ]] || die "these scripts install Debian 12 packages; this is not Debian"
    have apt-get || die "apt-get is missing"

    empty=$(mktemp)
    APT_WHERE=" on a bare Debian 12" apt_simulate -o "Dir::State::status=$empty" -- "${ALL_PACKAGES[@]}" || rc=1
    rm -f "$empty"

    mapfile -t pkgs < <(packages_needed "${needs[@]}")
    APT_WHERE=" on this machine" apt_simulate -- "${pkgs[@]}" || rc=1

    if ! have nats-server; then
        local aptx
        read -ra aptx < <(trixie_apt_options)
        APT_WHERE=" from Debian trixie on this machine" apt_simulate "${aptx[@]}" -- nats-server || rc=1
    fi
    if have node && [[ " ${needs[*]} " == *" browser "* ]] &&
        ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
        printf 'error: node %s is older than 18, which playwright-core %s needs\n' \
            "$(node --version)" "$PLAYWRIGHT_VERSION" >&2
        rc=1
    fi
    ((rc == 0)) || die "preflight failed: the setup would stop while installing (see above)"
    log "preflight: ${#ALL_PACKAGES[@]} packages install on bare Debian 12; this machine lacks ${#pkgs[@]}${pkgs[*]:+ (${pkgs[*]})}, all installable"
}

# debian_mirror: the system's Debian mirror (it may be a closer one than deb.debian.org).
debian_mirror() {
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

# trixie_apt_options: apt-get options that read Debian trixie through a private sources
# list and lists dir, so the system's apt setup stays bookworm-only. Only packages that do
# not pull trixie's libc may be installed from it (pgvector's source, nats-server).
trixie_apt_options() {
    local w=$INSTANODE_CACHE_DIR/trixie
    mkdir -p "$w/aptlists/partial"
    if [[ ! -f $w/aptlists/.updated ]]; then
        local mirror kr=/usr/share/keyrings/debian-archive-keyring.gpg
        mirror=$(debian_mirror)
        printf 'deb [signed-by=%s] %s trixie main\ndeb-src [signed-by=%s] %s trixie main\n' \
            "$kr" "$mirror" "$kr" "$mirror" >"$w/trixie.list"
        apt-get -o "Dir::Etc::sourcelist=$w/trixie.list" -o Dir::Etc::sourceparts=- \
            -o "Dir::State::Lists=$w/aptlists" update -q >&2
        touch "$w/aptlists/.updated"
    fi
    printf '%s ' -o "Dir::Etc::sourcelist=$w/trixie.list" -o Dir::Etc::sourceparts=- \
        -o "Dir::State::Lists=$w/aptlists"
    echo
}

# ---------------------------------------------------------------------------
# PostgreSQL 15 (bookworm) + pgvector (built from trixie's Debian source)
# ---------------------------------------------------------------------------

ensure_postgres() {
    if [[ -n $(packages_needed postgres) ]]; then
        # We run private clusters only; stop a fresh install from creating the
        # system "main" cluster on 5432 (ucf keeps our file on first install).
        if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
            mkdir -p /etc/postgresql-common
            echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf
        fi
        ensure_packages postgres
    fi
    [[ -e /usr/share/postgresql/15/extension/vector.control ]] || build_pgvector
}

build_pgvector() {
    local w=$INSTANODE_CACHE_DIR/pgvector
    mkdir -p "$w"
    # Serialise concurrent runs (up and test started together on a fresh box).
    exec 8>"$w/.lock"
    flock 8
    if [[ -e /usr/share/postgresql/15/extension/vector.control ]]; then exec 8>&-; return 0; fi

    local src=$w/pgvector-$PGVECTOR_VERSION
    if [[ ! -d $src ]]; then
        log "fetching pgvector $PGVECTOR_VERSION source from Debian trixie"
        # Private sources list and lists dir: the system's apt setup stays bookworm-only.
        # Only the source package comes from trixie; nothing from trixie is installed.
        local aptx
        read -ra aptx < <(trixie_apt_options)
        (cd "$w" && apt-get "${aptx[@]}" source -q pgvector)
        [[ -d $src ]] || die "apt-get source did not produce $src (trixie's pgvector version changed?)"
    fi

    log "building pgvector $PGVECTOR_VERSION"
    # Debian's patches already drop -march=native, so the build is portable.
    make -C "$src" -s PG_CONFIG="$PG_BIN/pg_config"
    make -C "$src" -s PG_CONFIG="$PG_BIN/pg_config" install
    exec 8>&-
}

# ---------------------------------------------------------------------------
# Rust
# ---------------------------------------------------------------------------

ensure_wasm_target() {
    local installed
    installed=$(rustup target list --installed)
    if ! grep -qx wasm32-wasip2 <<<"$installed"; then
        log "adding rust target wasm32-wasip2"
        rustup target add wasm32-wasip2
    fi
}

# build_all DATA: build the host and the provider components, install the
# components into DATA/providers.
build_all() {
    local data=$1 target
    target=$(target_dir)
    (
        cd "$INSTANODE_ROOT"
        log "building host"
        # The whole default workspace, not `-p instanode`: the same feature set as
        # `cargo test`, so the tests reuse these artifacts instead of building them again.
        cargo build --release --locked
        log "building provider components"
        # A second build of postgres that names itself the next version, for upgrade
        # tests; built first because the plain build below overwrites the same file.
        cargo build --profile provider --locked --target wasm32-wasip2 \
            -p instanode-provider-postgres --features next-version
        mkdir -p "$data/providers/variants"
        install_component "$target/wasm32-wasip2/provider/instanode_provider_postgres.wasm" \
            "$data/providers/variants/postgres-next.wasm"
        cargo build --profile provider --locked --target wasm32-wasip2 \
            -p instanode-provider-postgres -p instanode-provider-redis \
            -p instanode-provider-mongo -p instanode-provider-nats -p instanode-provider-spaces \
            -p instanode-provider-deploy -p instanode-provider-swarm -p instanode-provider-testing \
            -p instanode-provider-example
    )
    local name
    for name in postgres redis mongo nats spaces deploy swarm testing example; do
        install_component "$target/wasm32-wasip2/provider/instanode_provider_$name.wasm" \
            "$data/providers/$name.wasm"
    done
}

# install_component FROM TO: copy then rename, so a running host (which watches its
# providers directory) never loads a half-written file.
install_component() {
    local from=$1 to=$2
    mkdir -p "$(dirname "$to")"
    cp "$from" "$(dirname "$to")/.$(basename "$to").tmp"
    mv "$(dirname "$to")/.$(basename "$to").tmp" "$to"
}

# ---------------------------------------------------------------------------
# Docker Engine (container deploys): Debian's docker.io, one daemon per machine
# ---------------------------------------------------------------------------

# Machine-wide like the daemon itself: scripts/up and scripts/test share both.
DOCKERD_DIR=$INSTANODE_CACHE_DIR/dockerd
IMAGES_DIR=$INSTANODE_CACHE_DIR/images
BUSYBOX_IMAGE=instanode/busybox:1
PYTHON_IMAGE=instanode/python:3-bookworm

ensure_docker() { ensure_packages docker; }

# ensure_nginx: nginx, which scripts/bench puts in front of a deployed app to compare
# proxies. The packaged service is not started: the bench runs its own instance.
ensure_nginx() { ensure_packages nginx; }

docker_up() { timeout 10 docker info >/dev/null 2>&1; }

# start_docker: reuses the daemon on the default socket (/var/run/docker.sock), whoever
# started it, or starts dockerd in the background. Never stopped by our scripts: other
# runs on this machine may be using it.
start_docker() {
    if docker_up; then
        log "reusing running Docker daemon"
        return
    fi
    mkdir -p "$DOCKERD_DIR"
    # up and test started together: one starts the daemon, the other waits for it.
    exec 7>"$DOCKERD_DIR/.lock"
    flock 7
    local pid=
    if ! docker_up && ! pidfile_alive "$DOCKERD_DIR/dockerd.pid"; then
        log "starting the Docker daemon (log: $DOCKERD_DIR/dockerd.log)"
        # Own session, no terminal, no inherited lock: Ctrl-C on scripts/up must not reach
        # it, and CI must not wait on it for its output pipes to close.
        setsid dockerd --pidfile "$DOCKERD_DIR/dockerd.pid" \
            </dev/null >>"$DOCKERD_DIR/dockerd.log" 2>&1 7>&- &
        pid=$!
    fi
    local i
    for ((i = 0; i < 600; i++)); do
        if docker_up; then
            exec 7>&-
            return
        fi
        [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$DOCKERD_DIR/dockerd.log" >&2 || true
    die "the Docker daemon did not answer within 60 s (log: $DOCKERD_DIR/dockerd.log)"
}

# ensure_swarm: Swarm mode on this machine's engine, a single-node cluster advertised on
# loopback, for the Swarm deploy provider. Machine-wide and left on: the single-engine
# provider works the same with it, and other runs may be using it. `docker swarm leave
# --force` undoes it.
ensure_swarm() {
    local state
    state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) || state=
    [[ $state == active ]] && return
    log "turning on Swarm mode (single node, on 127.0.0.1)"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null ||
        die "docker swarm init failed"
}

# guard_app_networks PORT...: what tenants' containers may reach. App networks have
# bridges named inapp* (host/src/caps/containers.rs), and Swarm tasks go out through
# docker_gwbridge; from either, connections to this
# machine (any of its addresses) are refused except to the backend PORTs, and connections
# forwarded to link-local or private addresses (cloud metadata, the LAN) are refused.
# Replies to connections the host opened stay allowed. Machine-wide and idempotent: ports
# of earlier calls stay open, since scripts/up and scripts/test may run side by side.
guard_app_networks() {
    local inbound=INSTANODE-APPS-IN outbound=INSTANODE-APPS-OUT port range
    have iptables || die "iptables is missing (Debian package iptables)"
    if ! iptables -w -C "$inbound" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN 2>/dev/null; then
        iptables -w -N "$inbound" 2>/dev/null || iptables -w -F "$inbound"
        iptables -w -A "$inbound" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
        iptables -w -A "$inbound" -p tcp -j REJECT --reject-with tcp-reset
        iptables -w -A "$inbound" -j REJECT
    fi
    for port; do
        iptables -w -C "$inbound" -p tcp --dport "$port" -j RETURN 2>/dev/null ||
            iptables -w -I "$inbound" 2 -p tcp --dport "$port" -j RETURN
    done
    # Swarm tasks reach this machine and the world through the engine's gateway bridge.
    local bridge
    for bridge in inapp+ docker_gwbridge; do
        iptables -w -C INPUT -i "$bridge" -j "$inbound" 2>/dev/null ||
            iptables -w -I INPUT 1 -i "$bridge" -j "$inbound"
    done

    iptables -w -N "$outbound" 2>/dev/null || iptables -w -F "$outbound"
    # Answers to connections opened from outside (a published Swarm port) go back out.
    iptables -w -A "$outbound" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    # Between services of one stack (same bridge); the engine isolates other bridges.
    iptables -w -A "$outbound" -o inapp+ -j RETURN
    for range in 169.254.0.0/16 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10; do
        iptables -w -A "$outbound" -d "$range" -j REJECT
    done
    # The engine makes DOCKER-USER and jumps to it from FORWARD; one run without its
    # iptables management still gets the rule.
    if ! iptables -w -L DOCKER-USER -n >/dev/null 2>&1; then
        iptables -w -N DOCKER-USER
        iptables -w -I FORWARD 1 -j DOCKER-USER
    fi
    for bridge in inapp+ docker_gwbridge; do
        iptables -w -C DOCKER-USER -i "$bridge" -j "$outbound" 2>/dev/null ||
            iptables -w -I DOCKER-USER 1 -i "$bridge" -j "$outbound"
    done
}

# docker_gateway_ip: the default bridge's gateway (docker0, e.g. 172.17.0.1). Containers
# started with --add-host host.docker.internal:host-gateway reach the host there.
docker_gateway_ip() {
    local dev gw
    # Docker 20.10 lists only the subnet for its default bridge: read the bridge's address.
    dev=$(docker network inspect bridge \
        --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null) || dev=
    gw=$(ip -4 -o addr show dev "${dev:-docker0}" 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}')
    [[ $gw =~ ^[0-9]+(\.[0-9]+){3}$ ]] || die "no IPv4 address on Docker's default bridge (${dev:-docker0})"
    printf '%s\n' "$gw"
}

# backend_hosts: the addresses the backends listen on, space-separated: loopback, plus
# the Docker gateway when the daemon runs, so tenants' containers reach them. Never 0.0.0.0.
backend_hosts() {
    local gw
    gw=$(docker_gateway_ip 2>/dev/null) || gw=
    printf '127.0.0.1%s\n' "${gw:+ $gw}"
}

# ensure_base_images: local images that tenants' Dockerfiles can FROM (no registry is
# reachable). A machine whose Docker lost its images re-imports them from the cached
# root filesystems in seconds.
ensure_base_images() {
    ensure_image "$BUSYBOX_IMAGE" busybox build_busybox_rootfs 'CMD ["sh"]'
    ensure_image "$PYTHON_IMAGE" python-3-bookworm build_python_rootfs 'ENV LANG=C.UTF-8' \
        'CMD ["python3"]'
}

# ensure_image IMAGE NAME BUILDER CHANGE...: imports IMAGE from $IMAGES_DIR/NAME-HASH.tar,
# made by `BUILDER ROOTFS` when missing. HASH covers the recipe (the builder's source and
# the changes), so editing a recipe rebuilds its image; the image carries it as a label.
ensure_image() {
    local image=$1 name=$2 builder=$3 hash
    shift 3
    local changes=('ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$@")
    hash=$({ declare -f "$builder"; printf '%s\n' "${changes[@]}"; } | sha256sum | cut -c1-12)
    image_current "$image" "$hash" && return

    local tar=$IMAGES_DIR/$name-$hash.tar build=$IMAGES_DIR/.$name.build
    mkdir -p "$IMAGES_DIR"
    # Serialise concurrent runs (up and test started together on a fresh box).
    exec 7>"$IMAGES_DIR/.$name.lock"
    flock 7
    if ! image_current "$image" "$hash"; then
        if [[ ! -s $tar ]]; then
            log "building the root filesystem of $image (once per machine: $tar)"
            # Built aside and renamed into place: an interrupted run leaves no broken cache.
            remove_tree "$build"
            mkdir -p "$build/rootfs"
            "$builder" "$build/rootfs"
            tar --numeric-owner --one-file-system -C "$build/rootfs" -cf "$build/rootfs.tar" .
            mv "$build/rootfs.tar" "$tar"
            remove_tree "$build"
            # Tarballs of older recipes.
            find "$IMAGES_DIR" -maxdepth 1 -name "$name-*.tar" ! -name "${tar##*/}" -delete
        fi
        log "importing $image"
        local args=() c
        for c in "${changes[@]}" "LABEL org.instanode.recipe=$hash"; do args+=(--change "$c"); done
        docker import "${args[@]}" "$tar" "$image" >/dev/null
    fi
    exec 7>&-
}

# image_current IMAGE HASH: Docker has IMAGE, built from the recipe HASH.
image_current() {
    [[ $(docker image inspect -f '{{index .Config.Labels "org.instanode.recipe"}}' "$1" \
        2>/dev/null) == "$2" ]]
}

# remove_tree DIR: removes a build dir, first unmounting what an interrupted debootstrap
# may have left mounted in it (proc, sys).
remove_tree() {
    local m
    [[ -e $1 ]] || return 0
    awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" || true
    done
    rm -rf --one-file-system "$1"
}

# build_busybox_rootfs ROOT: busybox-static with every applet linked at its usual path
# (bin/sh, usr/bin/env for #! lines, usr/sbin/httpd, ...), root and nobody.
build_busybox_rootfs() {
    local root=$1 applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp}
    cp /bin/busybox "$root/bin/busybox"
    "$root/bin/busybox" --list-full | while read -r applet; do
        [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
    done
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
}

# build_python_rootfs ROOT: a minimal Debian bookworm with Python 3 and what a small web
# app on Postgres needs, without apt's caches and lists, docs or man pages.
build_python_rootfs() {
    local root=$1
    log "running debootstrap (a few minutes; log: $root.log)"
    debootstrap --variant=minbase --include=python3,python3-fastapi,python3-uvicorn,python3-psycopg2 \
        bookworm "$root" "$(debian_mirror)" >"$root.log" 2>&1 ||
        { tail -n 30 "$root.log" >&2; die "debootstrap failed (log: $root.log)"; }
    # Docker provides /dev: no device nodes in the image.
    rm -rf "$root"/dev/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/*
    find "$root/usr/share/doc" -type f ! -name copyright -delete
}

# ---------------------------------------------------------------------------
# Private Postgres cluster
# ---------------------------------------------------------------------------

as_postgres() {
    # cd / so the postgres user never trips over an unreadable working directory.
    (cd / && runuser -u postgres -- "$@")
}

# initdb/postgres run as the postgres user: every ancestor of DIR must be
# traversable by it (e.g. a checkout under /root). Grant search (x) only.
ensure_traversable() {
    local d=$1 dirs=() i
    while [[ $d != / ]]; do dirs+=("$d"); d=$(dirname "$d"); done
    # Top-down: a child only looks blocked while its parent still is.
    for ((i = ${#dirs[@]} - 1; i >= 0; i--)); do
        if ! runuser -u postgres -- test -x "${dirs[i]}" 2>/dev/null; then
            log "granting o+x on ${dirs[i]} so the postgres user can reach its cluster"
            chmod o+x "${dirs[i]}"
        fi
    done
}

# Print the postmaster's pid if DATA's cluster is running. A zombie counts as
# dead: PID 1 in some containers reaps orphans only after a delay.
pg_pid() {
    local f=$1/pg/postmaster.pid pid state
    [[ -f $f ]] || return 1
    pid=$(head -n1 "$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -n $state && $state != Z ]] || return 1
    printf '%s\n' "$pid"
}

pg_running() { pg_pid "$1" >/dev/null; }

# psql as the superuser over the cluster's unix socket.
pg_psql() {
    local data=$1 port=$2
    shift 2
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$data/run" -p "$port" -U postgres "$@"
}

# start_postgres DATA PORT [SETTING...]: SETTINGs are extra `-c name=value` options.
start_postgres() {
    local data port=$2
    local settings=("${@:3}") extra='' setting
    for setting in "${settings[@]}"; do
        extra+=" -c $setting"
    done
    data=$(abs_dir "$1")
    local pgdata=$data/pg run=$data/run

    ensure_traversable "$data"
    mkdir -p "$run"
    chown postgres:postgres "$run"
    chmod 700 "$run"
    touch "$data/pg.log"
    chown postgres:postgres "$data/pg.log"

    local superpw instpw
    superpw=$(secret "$data/secrets/pg_superuser_password")
    instpw=$(secret "$data/secrets/pg_instanode_password")

    if [[ ! -f $pgdata/PG_VERSION ]]; then
        log "initialising Postgres cluster in $pgdata"
        rm -rf "$pgdata"
        mkdir -p "$pgdata"
        chown postgres:postgres "$pgdata"
        chmod 700 "$pgdata"
        # Local socket: trust (only root/postgres reach $run). TCP: scram, so
        # tenants' passwords really matter.
        as_postgres "$PG_BIN/initdb" -D "$pgdata" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -N >/dev/null
    fi

    # Tenants' containers connect through the Docker bridges, with passwords like any TCP
    # client, as tenants' roles only: never as the superuser or the host's own role, and
    # never to the host's metadata database, whatever password they try. Docker's default
    # address pools: 172.17-31.0.0/16 first, then 192.168.0.0/16 in /20s.
    local hba=$pgdata/pg_hba.conf hba_changed='' method range block
    method=$(awk '$1 == "host" && $4 == "127.0.0.1/32" {print $5; exit}' "$hba")
    block="# instanode: tenants' containers (begin)"
    for range in 172.16.0.0/12 192.168.0.0/16; do
        block+=$'\n'"host all postgres,instanode $range reject"
        block+=$'\n'"host instanode,postgres,template1 all $range reject"
        block+=$'\n'"host all all $range ${method:-scram-sha-256}"
    done
    block+=$'\n'"# instanode: tenants' containers (end)"
    if [[ $(sed -n "/^# instanode: tenants' containers (begin)/,/^# instanode: tenants' containers (end)/p" "$hba") != "$block" ]]; then
        # Drops the block, and the unguarded lines of earlier versions; rewritten in
        # place so the file keeps its owner.
        local kept
        kept=$(sed -e "/^# instanode: tenants' containers (begin)/,/^# instanode: tenants' containers (end)/d" \
            -e "/^# Containers on Docker bridges (tenants' deployed apps)/,+1d" "$hba")
        printf '%s\n%s\n' "$kept" "$block" >"$hba"
        hba_changed=1
    fi

    local listen
    listen=$(backend_hosts)
    listen=${listen// /,}
    if pg_running "$data"; then
        local running_port running_listen=
        running_port=$(sed -n 4p "$pgdata/postmaster.pid")
        if [[ $running_port == "$port" ]]; then
            running_listen=$(pg_psql "$data" "$port" -d postgres -Atc 'SHOW listen_addresses' || true)
        fi
        if [[ $running_port == "$port" && $running_listen == "$listen" ]]; then
            log "reusing running Postgres on port $port"
            [[ -z $hba_changed ]] || pg_psql "$data" "$port" -d postgres -Atc 'SELECT pg_reload_conf()' >/dev/null
        else
            log "Postgres in $pgdata runs on $running_listen port $running_port; restarting on $listen port $port"
            stop_postgres "$data"
        fi
    fi
    if ! pg_running "$data"; then
        # Postgres refuses to start while a crashed postmaster's zombie still holds its pid.
        local old i
        old=$(head -n1 "$pgdata/postmaster.pid" 2>/dev/null || true)
        for ((i = 0; i < 50; i++)); do
            [[ $old =~ ^[0-9]+$ && -e /proc/$old ]] || break
            sleep 0.2
        done
        log "starting Postgres on $listen port $port"
        # Every new tenant database writes its template (~7.5 MB) to the WAL: a larger
        # max_wal_size keeps warm-pool refills from forcing back-to-back checkpoints.
        as_postgres "$PG_BIN/pg_ctl" -D "$pgdata" -w -l "$data/pg.log" \
            -o "-p $port -k $run -c listen_addresses=$listen -c max_connections=400 -c shared_buffers=128MB -c max_wal_size=4GB$extra" \
            start >/dev/null || { tail -n 30 "$data/pg.log" >&2; die "Postgres failed to start (log: $data/pg.log)"; }
    fi

    # Idempotent bootstrap: tenants must not reach the shared databases; the
    # host's metadata store is a database only the instanode role can open.
    pg_psql "$data" "$port" -d postgres -v superpw="$superpw" -v instpw="$instpw" <<'SQL'
ALTER ROLE postgres PASSWORD :'superpw';
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
SELECT 'CREATE ROLE instanode LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'instanode') \gexec
ALTER ROLE instanode LOGIN PASSWORD :'instpw';
SELECT 'CREATE DATABASE instanode OWNER instanode'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'instanode') \gexec
REVOKE CONNECT ON DATABASE instanode FROM PUBLIC;
GRANT CONNECT ON DATABASE instanode TO instanode;
SQL
}

# stop_postgres DATA
stop_postgres() {
    local data=$1
    if pg_running "$data"; then
        log "stopping Postgres ($data/pg)"
        as_postgres "$PG_BIN/pg_ctl" -D "$data/pg" -m fast -w stop >/dev/null
    fi
}

# ---------------------------------------------------------------------------
# Private Redis server
# ---------------------------------------------------------------------------

ensure_redis() { ensure_packages redis; }

redis_cli() {
    local data=$1 port=$2
    shift 2
    REDISCLI_AUTH=$(secret "$data/secrets/redis_admin_password") \
        redis-cli -h 127.0.0.1 -p "$port" --user admin --no-auth-warning "$@"
}

redis_running() { pidfile_alive "$1/redis/redis.pid"; }

# start_redis DATA PORT: a Redis server of our own under DATA/redis, users in an ACL file
# (`default` off, an `admin` user for the host), nothing persisted but the ACL file.
start_redis() {
    local data=$1 port=$2 dir=$1/redis adminpw hosts
    mkdir -p "$dir"
    adminpw=$(secret "$data/secrets/redis_admin_password")
    hosts=$(backend_hosts)
    if [[ ! -s $dir/users.acl ]]; then
        (umask 077 && printf 'user default off resetkeys resetchannels -@all\nuser admin on >%s ~* &* +@all\n' \
            "$adminpw" >"$dir/users.acl")
    fi
    if redis_running "$data"; then
        if [[ $(redis_cli "$data" "$port" PING 2>/dev/null) == PONG &&
            $(redis_cli "$data" "$port" CONFIG GET bind 2>/dev/null | sed -n 2p) == "$hosts" &&
            $(redis_cli "$data" "$port" CONFIG GET maxmemory-policy 2>/dev/null | sed -n 2p) == noeviction ]]; then
            log "reusing running Redis on port $port"
            return
        fi
        stop_redis "$data"
    fi
    cat >"$dir/redis.conf" <<EOF
bind $hosts
port $port
protected-mode yes
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly no
aclfile $dir/users.acl
maxclients 4000
# One tenant cannot take memory from all: a full server refuses writes instead of evicting
# other tenants' keys, no single value or string offset passes 4 MB (SETRANGE, SETBIT,
# APPEND), and client buffers are bounded.
maxmemory ${INSTANODE_REDIS_MAXMEMORY:-512mb}
maxmemory-policy noeviction
proto-max-bulk-len 4mb
client-query-buffer-limit 8mb
client-output-buffer-limit normal 32mb 8mb 60
client-output-buffer-limit pubsub 16mb 4mb 60
EOF
    log "starting Redis on $hosts port $port"
    redis-server "$dir/redis.conf"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(redis_cli "$data" "$port" PING 2>/dev/null) == PONG ]] && return
        sleep 0.1
    done
    tail -n 20 "$dir/redis.log" >&2
    die "Redis failed to start (log: $dir/redis.log)"
}

# stop_redis DATA
stop_redis() {
    local data=$1 pid
    if redis_running "$data"; then
        log "stopping Redis ($data/redis)"
        pid=$(cat "$data/redis/redis.pid")
        kill -TERM "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
}

# ---------------------------------------------------------------------------
# MongoDB-wire server (SecantusDB, a test-time server from PyPI; no mongod is packaged
# anywhere reachable) and pymongo for the tests, in one machine-wide virtualenv.
# ---------------------------------------------------------------------------

MONGO_VENV=$INSTANODE_CACHE_DIR/mongo-venv

# ---------------------------------------------------------------------------
# A headless browser for the dashboard tests: Debian's chromium, driven by playwright-core
# from npm (no browser download: it uses the system's).
# ---------------------------------------------------------------------------

PLAYWRIGHT_DIR=$INSTANODE_CACHE_DIR/playwright
PLAYWRIGHT_VERSION=1.61.1
# The sha512 of its tarball (the registry's `dist.integrity`, in hex).
PLAYWRIGHT_SHA512=87b425b7a9b8444a76e6abc876f6c3b55983e0ba955dfa51c61391bfd2f48f3113334e69e1fb8f27774acae4974310d26d79e64bbf470208bde7cf65192a4b92
# axe-core, the accessibility checker the dashboard test runs on every page.
AXE_VERSION=4.14.1
AXE_SHA512=1477dafa598d8d065f273d6af302aa203c02e83131707b7fa648cd41bd3d6b734f8c22a0dab86ee6a6f64b8afbe804b214d36db85a2826965edfb3a0b9d546b5

# ensure_browser: chromium and node from Debian when the machine has none of its own, and
# playwright-core and axe-core fetched from the npm registry as tarballs, checked against
# pinned digests. Neither has dependencies, so no npm is needed: a machine's own Node.js
# (NodeSource's bundles npm, which conflicts with Debian's) is never touched. Both support
# Node 18 (Debian 12's nodejs) and later.
ensure_browser() {
    ensure_packages browser
    ensure_npm_package playwright-core "$PLAYWRIGHT_VERSION" "$PLAYWRIGHT_SHA512"
    ensure_npm_package axe-core "$AXE_VERSION" "$AXE_SHA512"
}

# ensure_npm_package NAME VERSION SHA512: NAME's registry tarball unpacked into
# $PLAYWRIGHT_DIR/node_modules/NAME, unless that version is there already.
ensure_npm_package() {
    local name=$1 version=$2 sha512=$3
    local pkg=$PLAYWRIGHT_DIR/node_modules/$name
    if [[ -f $pkg/package.json ]] && grep -q "\"version\": \"$version\"" "$pkg/package.json"; then
        return 0
    fi
    log "fetching $name $version into $PLAYWRIGHT_DIR"
    local registry=${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org} tgz digest
    mkdir -p "$PLAYWRIGHT_DIR"
    tgz=$PLAYWRIGHT_DIR/$name-$version.tgz
    curl -fsSL --retry 3 -o "$tgz.part" "${registry%/}/$name/-/$name-$version.tgz" ||
        die "cannot fetch $name $version from $registry"
    digest=$(sha512sum "$tgz.part" | cut -d' ' -f1)
    [[ $digest == "$sha512" ]] ||
        die "$name $version from $registry does not match its pinned sha512"
    mv "$tgz.part" "$tgz"
    # Unpacked aside and renamed into place: an interrupted run leaves no half package.
    rm -rf "$pkg" "$pkg.part"
    mkdir -p "$pkg.part"
    tar -xzf "$tgz" -C "$pkg.part" --strip-components=1
    mv "$pkg.part" "$pkg"
    rm -f "$tgz"
}

ensure_mongo() {
    if [[ ! -x $MONGO_VENV/bin/secantusd-py || ! -x $MONGO_VENV/bin/python ]] ||
        ! "$MONGO_VENV/bin/python" -c 'import pymongo, nats, nkeys, boto3, aiosmtpd, mcp, openapi_spec_validator' 2>/dev/null ||
        [[ ! -x $MONGO_VENV/bin/schemathesis ]]; then
        log "installing the MongoDB-wire server, the SMTP sink and the Python test clients into $MONGO_VENV"
        ensure_packages python
        mkdir -p "$INSTANODE_CACHE_DIR"
        python3 -m venv --clear "$MONGO_VENV"
        "$MONGO_VENV/bin/pip" install -q 'secantusdb==0.7.0b3' pymongo 'nats-py[nkeys]' boto3 'aiosmtpd==1.4.6' 'mcp==2.3.0' \
            'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0'
    fi
}

# ---------------------------------------------------------------------------
# SMTP sink (aiosmtpd, in the same virtualenv): a real SMTP server that keeps every
# message in DATA/mail (a Maildir), so sign-in and claim links can be read locally.
# ---------------------------------------------------------------------------

# start_smtp DATA PORT
start_smtp() {
    local data=$1 port=$2 dir=$1/smtp
    # A Maildir: the sink writes to tmp/ and moves each message to new/.
    mkdir -p "$dir" "$data/mail/tmp" "$data/mail/new" "$data/mail/cur"
    if pidfile_alive "$dir/server.pid"; then
        log "reusing running SMTP sink on port $port"
        return
    fi
    log "starting SMTP sink on 127.0.0.1:$port (mail in $data/mail)"
    setsid "$MONGO_VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" \
        -c aiosmtpd.handlers.Mailbox "$data/mail" >"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/server.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
        pidfile_alive "$dir/server.pid" || break
        sleep 0.1
    done
    tail -n 20 "$dir/server.log" >&2
    die "SMTP sink failed to start (log: $dir/server.log)"
}

stop_smtp() { stop_pidfile "SMTP sink ($1/smtp)" "$1/smtp/server.pid"; }

mongo_running() { pidfile_alive "$1/mongo/server.pid"; }

# mongo_ping DATA PORT [USER PASSWORD]: exits 0 once the server answers (as USER when given).
mongo_ping() {
    local port=$2 user=${3:-} pw=${4:-}
    MONGO_PORT=$port MONGO_USER=$user MONGO_PW=$pw "$MONGO_VENV/bin/python" - <<'PY' 2>/dev/null
import os, pymongo
kw = {}
if os.environ["MONGO_USER"]:
    kw = dict(username=os.environ["MONGO_USER"], password=os.environ["MONGO_PW"], authSource="admin")
c = pymongo.MongoClient("127.0.0.1", int(os.environ["MONGO_PORT"]), directConnection=True,
                        serverSelectionTimeoutMS=300, **kw)
c.admin.command("ping" if not kw else "listDatabases")
PY
}

_start_mongo_server() {
    local data=$1 port=$2 dir=$1/mongo
    shift 2
    "$MONGO_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$dir/db" "$@" \
        >>"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    local i
    for ((i = 0; i < 150; i++)); do
        mongo_ping "$data" "$port" && return
        kill -0 "$(cat "$dir/server.pid")" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$dir/server.log" >&2
    die "MongoDB-wire server failed to start (log: $dir/server.log)"
}

# start_mongo DATA PORT: the server under DATA/mongo with auth on and a root user `admin`.
# A fresh server with auth refuses to create its first user, so the first start runs
# without auth, creates the user, and restarts.
start_mongo() {
    local data=$1 port=$2 dir=$1/mongo adminpw
    mkdir -p "$dir/db"
    adminpw=$(secret "$data/secrets/mongo_admin_password")
    if mongo_running "$data"; then
        if mongo_ping "$data" "$port" admin "$adminpw"; then
            log "reusing running MongoDB-wire server on port $port"
            return
        fi
        stop_mongo "$data"
    fi
    if [[ ! -f $dir/bootstrapped ]]; then
        log "bootstrapping the MongoDB-wire server's admin user"
        _start_mongo_server "$data" "$port"
        MONGO_PORT=$port MONGO_PW=$adminpw "$MONGO_VENV/bin/python" - <<'PY'
import os, pymongo
c = pymongo.MongoClient("127.0.0.1", int(os.environ["MONGO_PORT"]), directConnection=True)
c.admin.command("createUser", "admin", pwd=os.environ["MONGO_PW"], roles=["root"])
PY
        stop_mongo "$data"
        touch "$dir/bootstrapped"
    fi
    log "starting MongoDB-wire server on 127.0.0.1:$port"
    _start_mongo_server "$data" "$port" --auth
}

# stop_mongo DATA: stops the server and waits for it to exit (its storage engine holds a
# lock until then).
stop_mongo() { stop_pidfile "MongoDB-wire server ($1/mongo)" "$1/mongo/server.pid"; }

# ---------------------------------------------------------------------------
# NATS 2.10 (trixie's nats-server: bookworm's 2.9 lacks what JetStream clients expect)
# ---------------------------------------------------------------------------

ensure_nats() {
    command -v nats-server >/dev/null && return
    log "installing nats-server from Debian trixie"
    local w=$INSTANODE_CACHE_DIR/trixie aptx
    read -ra aptx < <(trixie_apt_options)
    # It depends only on libc6 >= 2.34, so bookworm's libc satisfies it.
    rm -f "$w"/nats-server_*.deb
    # Downloaded as root into a root-owned cache: no _apt sandbox to drop to.
    (cd "$w" && apt-get "${aptx[@]}" -o APT::Sandbox::User=root download -q nats-server)
    apt_install "$(ls "$w"/nats-server_*.deb)"
}

nats_running() { pidfile_alive "$1/nats/nats.pid"; }

nats_healthy() {
    curl -fsS "http://127.0.0.1:$1/healthz?js-enabled-only=true" >/dev/null 2>&1
}

# start_nats DATA PORT: a NATS server under DATA/nats in operator mode, trusting the host
# configured in DATA/instanode.toml (its keys are made on first use), with a full account
# resolver (accounts are pushed at run time) and JetStream. Monitoring is on PORT+1.
start_nats() {
    local data=$1 port=$2 dir=$1/nats
    local http=$((port + 1))
    mkdir -p "$dir/accounts" "$dir/jetstream"
    # Always rewritten: the trust lines come from the host's keys in its metadata database.
    (umask 077 && "$(target_dir)/release/instanode" --config "$data/instanode.toml" \
        nats-server-config >"$dir/trust.conf.tmp") || die "cannot read the host's NATS keys"
    mv "$dir/trust.conf.tmp" "$dir/trust.conf"
    cat >"$dir/nats.conf" <<EOF
listen: 127.0.0.1:$port
http: 127.0.0.1:$http
server_name: instanode
pid_file: "$dir/nats.pid"
log_file: "$dir/nats.log"
max_payload: 1MB
# Every account reserves its whole storage allowance out of max_file_store (64 anonymous
# queues per 4 GB); files grow only as tenants store. Size it to the disk you dedicate.
jetstream {
    store_dir: "$dir/jetstream"
    max_file_store: 64GB
    max_memory_store: 64MB
}
resolver {
    type: full
    dir: "$dir/accounts"
    allow_delete: true
    # A login for an unknown account waits this long for the resolver.
    timeout: "1s"
}
include "trust.conf"
EOF
    if nats_running "$data"; then
        if nats_healthy "$http"; then
            log "reusing running NATS server on port $port"
            return
        fi
        stop_nats "$data"
    fi
    log "starting NATS on 127.0.0.1:$port"
    nats-server -c "$dir/nats.conf" >>"$dir/nats.out" 2>&1 &
    local i
    for ((i = 0; i < 100; i++)); do
        nats_healthy "$http" && return
        sleep 0.1
    done
    tail -n 20 "$dir/nats.log" >&2 || true
    die "NATS failed to start (log: $dir/nats.log)"
}

stop_nats() { stop_pidfile "NATS ($1/nats)" "$1/nats/nats.pid"; }

# ---------------------------------------------------------------------------
# S3: s3s-fs, a small S3-compatible server that verifies SigV4 signatures
# ---------------------------------------------------------------------------

S3S_VERSION=0.14.1
S3S_BIN=$INSTANODE_CACHE_DIR/s3s-fs/bin/s3s-fs
S3_BUCKET=instanode

ensure_s3() {
    [[ -x $S3S_BIN ]] && return
    log "building s3s-fs $S3S_VERSION (an S3 server for dev and tests; a few minutes, once)"
    # Newer releases need a newer compiler than this project pins.
    cargo install -q s3s-fs --version "$S3S_VERSION" --features binary --locked \
        --root "$INSTANODE_CACHE_DIR/s3s-fs"
}

s3_running() { pidfile_alive "$1/s3/server.pid"; }

# start_s3 DATA PORT: an S3 server on PORT storing under DATA/s3, with the bucket
# `instanode` and one key pair (DATA/secrets/s3_*), held by the host only.
start_s3() {
    local data=$1 port=$2 dir=$1/s3
    mkdir -p "$dir/root/$S3_BUCKET"
    if s3_running "$data"; then
        log "reusing running S3 server on port $port"
        return
    fi
    log "starting S3 (s3s-fs) on 127.0.0.1:$port"
    "$S3S_BIN" --host 127.0.0.1 --port "$port" \
        --access-key "$(secret "$data/secrets/s3_access_key" 10)" \
        --secret-key "$(secret "$data/secrets/s3_secret_key")" \
        "$dir/root" >>"$dir/server.log" 2>&1 &
    echo $! >"$dir/server.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        # Unsigned requests are refused with 403: the server is up.
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") == 403 ]] && return
        sleep 0.1
    done
    tail -n 20 "$dir/server.log" >&2 || true
    die "S3 server failed to start (log: $dir/server.log)"
}

stop_s3() { stop_pidfile "S3 ($1/s3)" "$1/s3/server.pid"; }

ensure_registry() { ensure_packages registry; }

# start_registry DATA PORT: Debian's image registry on 127.0.0.1:PORT, storing under
# DATA/registry, deletes enabled (garbage collection: `docker-registry garbage-collect
# DATA/registry/config.yml`), and a login required: user `instanode`, password in
# DATA/secrets/registry_password (bcrypt in its htpasswd file). The engine trusts loopback
# registries without TLS.
REGISTRY_USER=instanode
start_registry() {
    local data=$1 port=$2 dir=$1/registry password
    mkdir -p "$dir/storage"
    password=$(secret "$data/secrets/registry_password")
    if pidfile_alive "$dir/server.pid"; then
        log "reusing running image registry on port $port"
        return
    fi
    # Python's crypt makes the bcrypt hash the registry wants (no extra package needed).
    python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
        "$REGISTRY_USER" "$password" >"$dir/htpasswd"
    cat >"$dir/config.yml" <<EOF2
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
auth:
  htpasswd:
    realm: instanode
    path: $dir/htpasswd
http:
  addr: 127.0.0.1:$port
EOF2
    log "starting the image registry on 127.0.0.1:$port"
    setsid docker-registry serve "$dir/config.yml" >>"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/server.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' -u "$REGISTRY_USER:$password" "http://127.0.0.1:$port/v2/") == 200 ]] && return
        sleep 0.1
    done
    tail -n 20 "$dir/server.log" >&2 || true
    die "image registry failed to start (log: $dir/server.log)"
}

# login_registry DATA PORT: the Docker CLI of this run logged in to the registry, with its
# own client config (DOCKER_CONFIG under DATA), so the machine's is left alone.
login_registry() {
    local data=$1 port=$2
    export DOCKER_CONFIG=$data/docker-client
    mkdir -p "$DOCKER_CONFIG"
    secret "$data/secrets/registry_password" |
        docker login -u "$REGISTRY_USER" --password-stdin "127.0.0.1:$port" >/dev/null ||
        die "cannot log in to the image registry on 127.0.0.1:$port"
}

stop_registry() { stop_pidfile "image registry ($1/registry)" "$1/registry/server.pid"; }

# ---------------------------------------------------------------------------
# Host config
# ---------------------------------------------------------------------------

# write_config DATA LISTEN PG_PORT REDIS_PORT MONGO_PORT NATS_PORT S3_PORT SMTP_PORT: the host
# writes its own config (`instanode config local`), so the shape lives in one place. Needs
# the host built (build_all).
write_config() {
    local data listen=$2 port=$3 redis_port=$4 mongo_port=$5 nats_port=$6 s3_port=$7 smtp_port=$8
    data=$(abs_dir "$1")
    # Created here when missing; the host only reads them.
    local name
    for name in pg_superuser_password pg_instanode_password redis_admin_password \
        mongo_admin_password s3_secret_key; do
        secret "$data/secrets/$name" >/dev/null
    done
    secret "$data/secrets/seal_key" 32 >/dev/null
    secret "$data/secrets/jwt_secret" 32 >/dev/null
    secret "$data/secrets/admin_token" 24 >/dev/null
    secret "$data/secrets/s3_access_key" 10 >/dev/null

    # Holds secrets: owner-only, and written whole before it replaces the old one.
    local cfg=$data/instanode.toml
    (umask 077 && "$(target_dir)/release/instanode" config local --data-dir "$data" \
        --listen "$listen" --postgres-port "$port" --redis-port "$redis_port" \
        --mongo-port "$mongo_port" --nats-port "$nats_port" --s3-port "$s3_port" \
        --smtp-port "$smtp_port" --bucket "$S3_BUCKET" >"$cfg.tmp")
    mv "$cfg.tmp" "$cfg"
}

# prepare_test_backends DATA PORT REDIS_PORT MONGO_PORT S3_PORT [SMTP_PORT REGISTRY_PORT]: installs and builds what is missing, starts
# the test backends, and exports what the test harness (tests/src/lib.rs) reads.
# remove_test_containers: what interrupted test runs left on the engine (test hosts use
# namespaces starting with "it"), and every instanode network no container uses. The
# engine has room for few networks, so leftovers would soon stop new ones.
remove_test_containers() {
    local label=dev.instanode.namespace
    docker service ls --filter "label=$label" --format "{{.ID}} {{.Name}}" 2>/dev/null |
        awk '$2 ~ /^sw/ {print $1}' | xargs -r docker service rm >/dev/null
    docker ps -a --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" |
        awk '$2 ~ /^(it|sw)/ {print $1}' | xargs -r docker rm -f >/dev/null
    docker images --filter "label=$label" --format '{{.Repository}}:{{.Tag}}' |
        awk '/^(it|sw)/' | xargs -r docker rmi -f >/dev/null
    docker network prune -f --filter "label=$label" >/dev/null
}

# make_acme_listener_certificate DATA: a throwaway CA and, signed by it, the certificate
# pebble serves its own API with (Debian's package ships none). Tests start their own pebble
# and trust this CA when they talk to it. Exports INSTANODE_TEST_ACME_{CA,CERT,KEY}.
make_acme_listener_certificate() {
    local dir=$1/acme
    if [[ ! -s $dir/cert.pem ]]; then
        mkdir -p "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=instanode test ACME CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$dir/cert.key" -out "$dir/cert.csr" -subj "/CN=localhost" 2>/dev/null
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
            "extendedKeyUsage=serverAuth" >"$dir/ext.cnf"
        openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 3650 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null
    fi
    export INSTANODE_TEST_ACME_CA=$dir/ca.pem INSTANODE_TEST_ACME_CERT=$dir/cert.pem
    export INSTANODE_TEST_ACME_KEY=$dir/cert.key
}

prepare_test_backends() {
    local data=$1 port=$2 redis_port=$3 mongo_port=$4 s3_port=$5 smtp_port=${6:-2526}
    local registry_port=${7:-55001}
    ensure_packages base
    ensure_postgres
    ensure_redis
    ensure_mongo
    ensure_nats
    ensure_s3
    ensure_docker
    ensure_wasm_target
    ensure_browser
    ensure_nginx
    ensure_registry
    ensure_packages acme
    build_all "$data"
    # Before the backends: they also listen on the Docker gateway, for tenants' containers.
    start_docker
    ensure_swarm
    ensure_base_images
    remove_test_containers
    guard_app_networks "$port" "$redis_port" "$mongo_port"
    # Throwaway clusters: no fsync. DROP DATABASE forces an immediate checkpoint, and
    # syncing every file of hundreds of test databases took 27 s on a slow VM disk, past
    # the provider's 30 s statement timeout when a few deletes queued behind it.
    local throwaway=(fsync=off full_page_writes=off synchronous_commit=off)
    start_postgres "$data" "$port" "${throwaway[@]}"
    start_s3 "$data" "$s3_port"
    export INSTANODE_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
    export INSTANODE_TEST_S3_BUCKET=$S3_BUCKET
    INSTANODE_TEST_S3_ACCESS_KEY=$(secret "$data/secrets/s3_access_key" 10)
    INSTANODE_TEST_S3_SECRET_KEY=$(secret "$data/secrets/s3_secret_key")
    export INSTANODE_TEST_S3_ACCESS_KEY INSTANODE_TEST_S3_SECRET_KEY
    start_redis "$data" "$redis_port"
    start_mongo "$data" "$mongo_port"
    start_smtp "$data" "$smtp_port"
    start_registry "$data" "$registry_port"
    export INSTANODE_TEST_SMTP_URL="smtp://127.0.0.1:$smtp_port"
    export INSTANODE_TEST_MAILDIR=$data/mail
    export INSTANODE_TEST_MONGO_URL="mongodb://admin:$(secret "$data/secrets/mongo_admin_password")@127.0.0.1:$mongo_port/?authSource=admin&directConnection=true"
    export INSTANODE_TEST_MONGO_PORT=$mongo_port
    export INSTANODE_TEST_PYTHON=$MONGO_VENV/bin/python
    export INSTANODE_TEST_CHROMIUM=/usr/bin/chromium
    export INSTANODE_TEST_NGINX=/usr/sbin/nginx
    export INSTANODE_TEST_REGISTRY="127.0.0.1:$registry_port"
    export INSTANODE_TEST_REGISTRY_USER=$REGISTRY_USER
    INSTANODE_TEST_REGISTRY_PASSWORD=$(secret "$data/secrets/registry_password")
    export INSTANODE_TEST_REGISTRY_PASSWORD
    login_registry "$data" "$registry_port"
    make_acme_listener_certificate "$data"
    export INSTANODE_TEST_PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR
    export INSTANODE_TEST_REDIS_URL="redis://admin:$(secret "$data/secrets/redis_admin_password")@127.0.0.1:$redis_port"
    export INSTANODE_TEST_REDIS_PORT=$redis_port

    local superpw
    superpw=$(secret "$data/secrets/pg_superuser_password")
    INSTANODE_BIN="$(target_dir)/release/instanode"
    export INSTANODE_BIN
    export INSTANODE_TEST_PG_SUPERUSER_URL="postgres://postgres:$superpw@127.0.0.1:$port/postgres"
    export INSTANODE_TEST_PG_HOST=127.0.0.1
    # Where containers reach the host (read here: newer engines leave it out of `inspect`).
    INSTANODE_TEST_DOCKER_GATEWAY=$(docker_gateway_ip)
    export INSTANODE_TEST_DOCKER_GATEWAY
    export INSTANODE_TEST_PG_PORT=$port
    export INSTANODE_TEST_PROVIDERS_DIR=$data/providers
    export INSTANODE_TEST_DATA_DIR=$data

    # A second cluster that a test stops and restarts, to watch the host ride out a
    # backend outage while its metadata database stays up.
    local outage=$data/outage outage_port=$((port + 100))
    start_postgres "$outage" "$outage_port" "${throwaway[@]}"
    cat >"$outage/ctl" <<EOF
#!/usr/bin/env bash
# Stops or starts the outage-test cluster: ctl stop|start
source "$INSTANODE_ROOT/scripts/lib.sh"
case "\$1" in
    stop) stop_postgres "$outage" ;;
    start) start_postgres "$outage" "$outage_port" ${throwaway[*]} ;;
    *) die "usage: ctl stop|start" ;;
esac
EOF
    chmod +x "$outage/ctl"
    superpw=$(secret "$outage/secrets/pg_superuser_password")
    export INSTANODE_TEST_OUTAGE_PG_URL="postgres://postgres:$superpw@127.0.0.1:$outage_port/postgres"
    export INSTANODE_TEST_OUTAGE_PG_PORT=$outage_port
    export INSTANODE_TEST_OUTAGE_CTL=$outage/ctl
}
