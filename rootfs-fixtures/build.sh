#!/usr/bin/env bash
# Build the busybox-based test root filesystem and the demo OCI bundle.
#
# Usage: build.sh OUTDIR
#
# Creates (or brings up to date, in place):
#   OUTDIR/rootfs/              minimal rootfs made from the host's static busybox
#   OUTDIR/demo/config.json     copy of rootfs-fixtures/demo/config.json
#   OUTDIR/demo/rootfs/         same content as OUTDIR/rootfs
#
# stdout: exactly one line, the absolute path of OUTDIR/rootfs.
# stderr: diagnostics.  Nothing is downloaded except, if needed, the Debian
# package busybox-static via apt-get.
set -euo pipefail

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 1 && -n $1 ]] || die "usage: $0 OUTDIR"

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BUSYBOX=/bin/busybox
REQUIRED_APPLETS=(sh true sleep cat httpd id hostname ls wget nc date)

# --- host busybox -----------------------------------------------------------

is_static() {
	local bin=$1
	[[ -x $bin ]] || return 1
	if command -v readelf >/dev/null 2>&1; then
		# A dynamically linked executable has a PT_INTERP program header.
		readelf -lW "$bin" 2>/dev/null | grep -q 'Requesting program interpreter' && return 1
		readelf -hW "$bin" >/dev/null 2>&1 || return 1
		return 0
	elif command -v file >/dev/null 2>&1; then
		file -L "$bin" | grep -q 'statically linked'
	else
		# ldd fails ("not a dynamic executable") on static binaries.
		! ldd "$bin" >/dev/null 2>&1
	fi
}

if ! is_static "$BUSYBOX"; then
	log "$BUSYBOX is missing or not statically linked; installing busybox-static"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y busybox-static >&2; then
		apt-get update >&2
		apt-get install -y busybox-static >&2
	fi
	is_static "$BUSYBOX" || die "$BUSYBOX is still not a static binary after installing busybox-static"
fi

mapfile -t APPLETS < <("$BUSYBOX" --list)
[[ ${#APPLETS[@]} -gt 0 ]] || die "'$BUSYBOX --list' printed no applets"
declare -A HAVE_APPLET=()
for a in "${APPLETS[@]}"; do HAVE_APPLET[$a]=1; done
for a in "${REQUIRED_APPLETS[@]}"; do
	[[ -n ${HAVE_APPLET[$a]:-} ]] || die "host busybox lacks the required applet '$a'"
done

# --- helpers ----------------------------------------------------------------

# put_file PATH MODE CONTENT: write CONTENT to PATH unless it already matches.
put_file() {
	local path=$1 mode=$2 content=$3
	if ! printf '%s' "$content" | cmp -s - "$path" 2>/dev/null; then
		rm -f "$path"
		printf '%s' "$content" >"$path"
	fi
	chmod "$mode" "$path"
}

PASSWD='root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home:/bin/sh
'
GROUP='root:x:0:
nobody:x:65534:
app:x:1000:
extra:x:2000:
'
HOSTNAME_FILE='hookrun
'
INDEX_HTML='hookrun demo
'
NOTEXEC='#!/bin/sh
# Deliberately not executable (mode 0644): exec of this file must fail with EACCES.
echo "notexec was executed"
'

# populate ROOT: create or update a rootfs in place.
populate() {
	local root=$1 d a
	for d in bin sbin usr/bin proc sys dev tmp root etc var/www home; do
		mkdir -p "$root/$d"
	done
	chmod 0755 "$root" "$root/bin" "$root/sbin" "$root/usr" "$root/usr/bin" \
		"$root/proc" "$root/sys" "$root/dev" "$root/etc" "$root/var" \
		"$root/var/www" "$root/home"
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"

	if ! cmp -s "$BUSYBOX" "$root/bin/busybox" 2>/dev/null; then
		rm -f "$root/bin/busybox"
		cp "$BUSYBOX" "$root/bin/busybox"
	fi
	chmod 0755 "$root/bin/busybox"

	# Drop applet links the current busybox no longer provides.
	local stale=()
	while IFS= read -r -d '' a; do
		a=${a##*/}
		[[ -n ${HAVE_APPLET[$a]:-} ]] || stale+=("$root/bin/$a")
	done < <(find "$root/bin" -maxdepth 1 -type l -lname busybox -print0)
	((${#stale[@]} == 0)) || rm -f "${stale[@]}"

	# One relative symlink per applet: bin/<applet> -> busybox.
	for a in "${APPLETS[@]}"; do
		[[ $a == busybox || $a == */* ]] && continue
		if [[ ! -L $root/bin/$a ]]; then
			rm -rf "$root/bin/$a"
			ln -s busybox "$root/bin/$a"
		fi
	done

	put_file "$root/etc/passwd" 0644 "$PASSWD"
	put_file "$root/etc/group" 0644 "$GROUP"
	put_file "$root/etc/hostname" 0644 "$HOSTNAME_FILE"
	put_file "$root/var/www/index.html" 0644 "$INDEX_HTML"
	put_file "$root/bin/notexec" 0644 "$NOTEXEC"

	for a in "${REQUIRED_APPLETS[@]}"; do
		[[ -x $root/bin/$a ]] || die "$root/bin/$a is missing after build"
	done
}

# --- build ------------------------------------------------------------------

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd -P)

populate "$OUTDIR/rootfs"

mkdir -p "$OUTDIR/demo"
if ! cmp -s "$SCRIPT_DIR/demo/config.json" "$OUTDIR/demo/config.json"; then
	cp "$SCRIPT_DIR/demo/config.json" "$OUTDIR/demo/config.json"
fi
chmod 0644 "$OUTDIR/demo/config.json"
populate "$OUTDIR/demo/rootfs"

log "rootfs and demo bundle ready in $OUTDIR"
printf '%s\n' "$OUTDIR/rootfs"
