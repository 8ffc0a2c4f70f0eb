#!/usr/bin/env bash
# bench/bench.sh: start-up, exec and lifecycle-hook latency and peak RSS of hookrun compared
# with runc and crun.
#
# Usage: sudo bench/bench.sh      (see bench/README.md)
#
# Environment:
#   BENCH_N=50          timed iterations per runtime and benchmark
#   BENCH_WARMUP=2      untimed iterations per runtime first
#   BENCH_RSS_N=10      `run` iterations under GNU time for peak RSS
#   BENCH_LIST_N=1000   containers per runtime for the `list` growth row (0: skip it)
#   BENCH_STRICT=0      1: exit 1 unless every target passes
#   BENCH_CGROUP_NS=1   0: never re-run in a private mount namespace (see the README)
#   BENCH_RAW_DIR=      directory to copy the raw per-iteration numbers to
#   HOOKRUN=, RUNC=, CRUN=   binaries to use (default target/release/hookrun, runc, crun)
set -uo pipefail
export LC_ALL=C # EPOCHREALTIME must use '.' as the decimal point

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ $EUID -ne 0 ]]; then
	die "must run as root: the runtimes need namespaces, mounts and cgroups (try: sudo $0)"
fi

N=${BENCH_N:-50}
WARMUP=${BENCH_WARMUP:-2}
RSS_N=${BENCH_RSS_N:-10}
LIST_N=${BENCH_LIST_N:-1000}
STRICT=${BENCH_STRICT:-0}
for v in N WARMUP RSS_N LIST_N; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_$v must be a non-negative integer, not '${!v}'"
done
((N >= 1)) || die "BENCH_N must be at least 1"
PYTHON=$(command -v python3) || die "python3 is needed (config.json editing and statistics)"
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd -P)

RT_NAMES=(hookrun runc crun)
declare -A RT_BIN=(
	[hookrun]=${HOOKRUN:-$REPO/target/release/hookrun}
	[runc]=${RUNC:-$(command -v runc || true)}
	[crun]=${CRUN:-$(command -v crun || true)}
)

# --- cgroup hybrid mode -------------------------------------------------------
# crun (at least up to 1.8) refuses to do anything on a cgroup v1/v2 hybrid host whose v2
# hierarchy (/sys/fs/cgroup/unified) has controllers: "cgroups in hybrid mode not supported,
# drop all controllers from cgroupv2". So that all three runtimes see the same host, the
# whole benchmark then re-runs itself in a private mount namespace without that mount
# (a pure cgroup v1 view). The host's mounts are not changed.
if [[ -z ${BENCH_IN_NS:-} && ${BENCH_CGROUP_NS:-1} != 0 && -n ${RT_BIN[crun]} ]] &&
	[[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == tmpfs ]] &&
	[[ $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]] &&
	[[ -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
	command -v unshare >/dev/null || die "cgroup hybrid host and no unshare(1); set BENCH_CGROUP_NS=0 to skip crun"
	log "cgroup v1/v2 hybrid host with v2 controllers ($(</sys/fs/cgroup/unified/cgroup.controllers)): crun refuses it;"
	log "re-running in a private mount namespace without /sys/fs/cgroup/unified (all runtimes)"
	export BENCH_IN_NS=1
	exec unshare --mount --propagation private -- bash -c \
		'umount /sys/fs/cgroup/unified || exit 1; exec bash "$0" "$@"' "$SELF" "$@"
fi

# --- binaries and bundle ------------------------------------------------------
if [[ ! -x ${RT_BIN[hookrun]} ]]; then
	[[ -z ${HOOKRUN:-} ]] || die "HOOKRUN=${HOOKRUN} is not executable"
	log "building the release binary (cargo build --release)"
	(cd "$REPO" && cargo build --release) >&2 || die "cargo build --release failed"
fi
ROOTFS=$(bash "$REPO/rootfs-fixtures/build.sh" "$REPO/target/fixtures") || die "rootfs-fixtures/build.sh failed"
[[ -x $ROOTFS/bin/true ]] || die "no $ROOTFS/bin/true"

WORK=$(mktemp -d /tmp/hookrun-bench.XXXXXX) || die "mktemp failed"
BUNDLE=$WORK/bundle          # /bin/true
SLEEP_BUNDLE=$WORK/bundle-sleep # sleep 100000: the container `exec` goes into
LC_BUNDLE=$WORK/bundle-lc    # exits on SIGTERM; PostStart and PreStop exec /bin/true
ACTIVE=() # runtimes being benchmarked

cleanup() {
	local rt root d
	[[ -n ${WORK:-} && -d $WORK ]] || return 0
	for rt in "${RT_NAMES[@]}"; do
		root=$WORK/root-$rt
		[[ -d $root ]] || continue
		for d in "$root"/*/; do
			[[ -d $d ]] || continue
			d=${d%/}
			"${RT_BIN[$rt]}" --root "$root" delete -f "${d##*/}" </dev/null >/dev/null 2>&1 ||
				log "warning: $rt delete -f ${d##*/} failed"
		done
	done
	# The bundle's root.path points at target/fixtures; $WORK holds only plain files.
	rm -rf -- "$WORK"
	WORK=
}
on_signal() {
	log "interrupted; cleaning up"
	cleanup
	trap - "$1"
	kill -"$1" $$
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

mkdir -p "$BUNDLE" "$SLEEP_BUNDLE" "$LC_BUNDLE" "$WORK/res" || die "cannot populate $WORK"
# The bundle runc users have: `runc spec` (hookrun's own `spec` writes the same when runc is
# missing), its ambient capabilities removed (crun 1.8 refuses to raise them without an
# inheritable set, where runc and hookrun pass over them).
if [[ -n ${RT_BIN[runc]} ]]; then
	(cd "$BUNDLE" && "${RT_BIN[runc]}" spec) </dev/null || die "runc spec failed"
else
	"${RT_BIN[hookrun]}" spec -b "$BUNDLE" </dev/null || die "hookrun spec -b $BUNDLE failed"
fi
# ociVersion 1.0.2: crun 1.8 rejects anything but 1.0.x ("unknown version specified").
# The lifecycle bundle's entrypoint is pid 1, which ignores SIGTERM unless it traps it; it waits
# on a background sleep so that the trap runs at once (a foreground sleep would delay it).
# runc and crun ignore the dev.hookrun.* annotations.
"$PYTHON" - "$BUNDLE" "$SLEEP_BUNDLE" "$LC_BUNDLE" "$ROOTFS" <<'EOF' || die "cannot edit config.json"
import json, sys
true_b, sleep_b, lc_b, rootfs = sys.argv[1:5]
with open(true_b + "/config.json") as f:
    c = json.load(f)
c["ociVersion"] = "1.0.2"
c["process"]["terminal"] = False
c["process"]["capabilities"].pop("ambient", None)
c["root"] = {"path": rootfs, "readonly": True}
c.pop("annotations", None)
hook = {"exec": {"command": ["/bin/true"]}}
for bundle, args, ann in (
    (true_b, ["/bin/true"], None),
    (sleep_b, ["sleep", "100000"], None),
    (lc_b, ["sh", "-c", 'trap "exit 0" TERM; while :; do sleep 1 & wait $!; done'], {
        "dev.hookrun.lifecycle": json.dumps({"postStart": hook, "preStop": hook}),
        "dev.hookrun.termination-grace-period-seconds": "5",
    }),
):
    c["process"]["args"] = args
    if ann:
        c["annotations"] = ann
    with open(bundle + "/config.json", "w") as f:
        json.dump(c, f, indent=2)
EOF

# --- helpers ------------------------------------------------------------------
# A file descriptor that never becomes readable: `read -t` on it sleeps without a fork.
exec {SLEEP_FD}<> <(:)
msleep() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

now_us() { local t=${EPOCHREALTIME/./}; REPLY=$((10#$t)); }

# rt RUNTIME ARGS...: the runtime with its private state directory.
rt() { local r=$1; shift; "${RT_BIN[$r]}" --root "$WORK/root-$r" "$@"; }

# pid_gone PID: true once PID is gone or a zombie (only the cheap /proc check).
pid_gone() {
	local line=
	{ read -r line <"/proc/$1/stat"; } 2>/dev/null
	[[ -n $line ]] || return 0
	line=${line##*) }
	[[ ${line%% *} == [ZX] ]]
}

declare -A FAILS=() FIRST_ERR=()
# fail RUNTIME BENCH [ID]: count a failed iteration, keep its first error, remove container ID.
fail() {
	local key=$1/$2
	FAILS[$key]=$((${FAILS[$key]:-0} + 1))
	if [[ -z ${FIRST_ERR[$key]:-} ]]; then
		FIRST_ERR[$key]=$(tr '\n' ' ' <"$WORK/err")
		log "$1 $2 failed: ${FIRST_ERR[$key]}"
	fi
	[[ -z ${3:-} ]] || rt "$1" delete -f "$3" </dev/null >/dev/null 2>&1
}

# record RUNTIME BENCH T0 T1 [RECORD]: store T1 - T0 (µs) in ns when RECORD is set.
record() { [[ -z ${5:-} ]] || echo $((($4 - $3) * 1000)) >>"$WORK/res/$1.$2"; }

# wait_stopped RUNTIME ID PIDFILE DEADLINE: wait for the init to exit with a fork-free /proc
# check every 1 ms, then ask the runtime once (and again every 1 ms should it not say
# "stopped" yet). Fails (message in $WORK/err) at DEADLINE (µs, as now_us).
wait_stopped() {
	local r=$1 id=$2 pid= out
	{ read -r pid <"$3"; } 2>/dev/null # no trailing newline: read fails but still sets pid
	if [[ $pid =~ ^[0-9]+$ ]]; then
		until pid_gone "$pid"; do
			now_us; ((REPLY < $4)) || break
			msleep 0.001
		done
	fi
	while :; do
		out=$(rt "$r" state "$id" </dev/null 2>"$WORK/err")
		[[ $out =~ \"status\"[[:space:]]*:[[:space:]]*\"stopped\" ]] && return 0
		now_us
		if ((REPLY >= $4)); then
			echo "not stopped in time; last state: $out" >>"$WORK/err"
			return 1
		fi
		msleep 0.001
	done
}

# wait_term_trap PIDFILE DEADLINE: wait (fork-free, 1 ms steps) until the init catches SIGTERM
# (bit 15 of SigCgt in /proc/PID/status), i.e. the lifecycle entrypoint has set its trap.
wait_term_trap() {
	local pid= line mask
	{ read -r pid <"$1"; } 2>/dev/null
	if [[ ! $pid =~ ^[0-9]+$ ]]; then
		echo "no pid in the pid file" >"$WORK/err"
		return 1
	fi
	while :; do
		mask=
		{ while read -r line; do
			[[ $line == SigCgt:* ]] && { mask=${line#SigCgt:}; break; }
		done <"/proc/$pid/status"; } 2>/dev/null
		mask=${mask//[[:space:]]/}
		[[ $mask =~ ^[0-9a-fA-F]+$ ]] && (((16#$mask >> 14) & 1)) && return 0
		now_us
		if ((REPLY >= $2)); then
			echo "the entrypoint (pid $pid) has not trapped SIGTERM in time" >"$WORK/err"
			return 1
		fi
		msleep 0.001
	done
}

# bench_run RUNTIME ID [RECORD]: `run` of /bin/true in the foreground.
bench_run() {
	local r=$1 id=$2 t0 t1 rc
	now_us; t0=$REPLY
	rt "$r" run --bundle "$BUNDLE" "$id" </dev/null >/dev/null 2>"$WORK/err"
	rc=$?
	now_us; t1=$REPLY
	if ((rc != 0)); then
		fail "$r" run "$id"
		return
	fi
	# runc, crun and hookrun all delete after a foreground run; make sure of it.
	[[ ! -e $WORK/root-$r/$id ]] || rt "$r" delete -f "$id" </dev/null >/dev/null 2>&1
	record "$r" run "$t0" "$t1" "${3:-}"
}

# bench_cycle RUNTIME ID [RECORD]: create, start, wait for the exit, delete.
bench_cycle() {
	local r=$1 id=$2 t0 t1 tc
	local pidfile=$WORK/pid
	rm -f "$pidfile"
	now_us; t0=$REPLY
	rt "$r" create --bundle "$BUNDLE" --pid-file "$pidfile" "$id" </dev/null >/dev/null 2>"$WORK/err" ||
		{ fail "$r" cycle "$id"; return; }
	now_us; tc=$REPLY
	rt "$r" start "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" cycle "$id"; return; }
	wait_stopped "$r" "$id" "$pidfile" $((t0 + 10000000)) || { fail "$r" cycle "$id"; return; }
	rt "$r" delete "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" cycle "$id"; return; }
	now_us; t1=$REPLY
	record "$r" cycle "$t0" "$t1" "${3:-}"
	record "$r" create "$t0" "$tc" "${3:-}"
}

# bench_exec RUNTIME [RECORD]: `exec EXEC_ID /bin/true` in the long-running container.
bench_exec() {
	local r=$1 t0 t1 rc
	now_us; t0=$REPLY
	rt "$r" exec "$EXEC_ID" /bin/true </dev/null >/dev/null 2>"$WORK/err"
	rc=$?
	now_us; t1=$REPLY
	((rc == 0)) || { echo "(exit status $rc)" >>"$WORK/err"; fail "$r" exec; return; }
	record "$r" exec "$t0" "$t1" "${2:-}"
}

# bench_poststart RUNTIME ID [RECORD]: on a created lifecycle container (created untimed),
# hookrun: `start` (returns once PostStart exec /bin/true is done);
# runc, crun: `start`, then `exec /bin/true`. Then `delete -f`, untimed.
bench_poststart() {
	local r=$1 id=$2 t0 t1
	rt "$r" create --bundle "$LC_BUNDLE" "$id" </dev/null >/dev/null 2>"$WORK/err" ||
		{ fail "$r" poststart "$id"; return; }
	now_us; t0=$REPLY
	if [[ $r == hookrun ]]; then
		rt "$r" start "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" poststart "$id"; return; }
	else
		rt "$r" start "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" poststart "$id"; return; }
		rt "$r" exec "$id" /bin/true </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" poststart "$id"; return; }
	fi
	now_us; t1=$REPLY
	rt "$r" delete -f "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" poststart "$id"; return; }
	record "$r" poststart "$t0" "$t1" "${3:-}"
}

# bench_stop RUNTIME ID [RECORD]: create and start a lifecycle container and wait until its
# entrypoint traps SIGTERM (untimed), then
# hookrun: `stop` (PreStop exec /bin/true, SIGTERM, wait for the exit);
# runc, crun: `exec /bin/true`, `kill TERM`, wait until `state` says stopped (as in cycle).
# Then `delete`, untimed (hookrun: after checking that `state` says stopped).
bench_stop() {
	local r=$1 id=$2 t0 t1 out
	local pidfile=$WORK/pid
	rm -f "$pidfile"
	rt "$r" create --bundle "$LC_BUNDLE" --pid-file "$pidfile" "$id" </dev/null >/dev/null 2>"$WORK/err" ||
		{ fail "$r" stop "$id"; return; }
	rt "$r" start "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" stop "$id"; return; }
	now_us
	wait_term_trap "$pidfile" $((REPLY + 10000000)) || { fail "$r" stop "$id"; return; }
	now_us; t0=$REPLY
	if [[ $r == hookrun ]]; then
		rt "$r" stop "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" stop "$id"; return; }
		now_us; t1=$REPLY
		out=$(rt "$r" state "$id" </dev/null 2>"$WORK/err")
		if [[ ! $out =~ \"status\"[[:space:]]*:[[:space:]]*\"stopped\" ]]; then
			echo "not stopped after stop returned; state: $out" >>"$WORK/err"
			fail "$r" stop "$id"
			return
		fi
	else
		rt "$r" exec "$id" /bin/true </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" stop "$id"; return; }
		rt "$r" kill "$id" TERM </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" stop "$id"; return; }
		wait_stopped "$r" "$id" "$pidfile" $((t0 + 10000000)) || { fail "$r" stop "$id"; return; }
		now_us; t1=$REPLY
	fi
	rt "$r" delete "$id" </dev/null >/dev/null 2>"$WORK/err" || { fail "$r" stop "$id"; return; }
	record "$r" stop "$t0" "$t1" "${3:-}"
}

# bench_rss RUNTIME ID: peak RSS (KiB) of `run` under GNU time.
bench_rss() {
	local r=$1 id=$2 kib
	/usr/bin/time -f %M -o "$WORK/rss" "${RT_BIN[$r]}" --root "$WORK/root-$r" \
		run --bundle "$BUNDLE" "$id" </dev/null >/dev/null 2>"$WORK/err" ||
		{ fail "$r" rss "$id"; return; }
	[[ ! -e $WORK/root-$r/$id ]] || rt "$r" delete -f "$id" </dev/null >/dev/null 2>&1
	kib=$(tail -n 1 "$WORK/rss")
	[[ $kib =~ ^[0-9]+$ ]] && echo "$kib" >>"$WORK/res/$r.rss"
}

# --- probe the runtimes -------------------------------------------------------
for r in "${RT_NAMES[@]}"; do
	bin=${RT_BIN[$r]}
	if [[ -z $bin || ! -x $bin ]]; then
		log "note: $r not found; skipping it"
		continue
	fi
	mkdir -p "$WORK/root-$r"
	if ! rt "$r" run --bundle "$BUNDLE" "probe-$r" </dev/null >/dev/null 2>"$WORK/err"; then
		err=$(tr '\n' ' ' <"$WORK/err")
		rt "$r" delete -f "probe-$r" </dev/null >/dev/null 2>&1
		[[ $r != hookrun ]] || die "hookrun cannot run the benchmark bundle: $err"
		log "note: $r cannot run the benchmark bundle, skipping it: $err"
		continue
	fi
	ACTIVE+=("$r")
	log "$r: $bin ($("$bin" --version 2>/dev/null | head -n 1))"
done
((${#ACTIVE[@]} >= 2)) || log "note: only hookrun is available; no ratios"

# hookrun must really run both hooks, or its lifecycle numbers mean nothing: one untimed
# start/stop of the lifecycle bundle, checked with `describe --format json`.
# check_hook ID HOOK: HOOK (PostStart, PreStop) has a Succeeded run in describe.
check_hook() {
	rt hookrun describe --format json "$1" </dev/null 2>>"$WORK/err" | "$PYTHON" -c '
import json, sys
runs = json.load(sys.stdin).get("hookRuns") or []
mine = [x for x in runs if x.get("hook") == sys.argv[1]]
if not any(x.get("result") == "Succeeded" for x in mine):
    sys.exit(f"describe shows no Succeeded {sys.argv[1]} run: {mine}")
' "$2" 2>>"$WORK/err"
}
LIFECYCLE=1
: >"$WORK/err"
id=probe-lc-$$
rm -f "$WORK/pid"
if ! { rt hookrun create --bundle "$LC_BUNDLE" --pid-file "$WORK/pid" "$id" </dev/null >/dev/null 2>>"$WORK/err" &&
	rt hookrun start "$id" </dev/null >/dev/null 2>>"$WORK/err" && check_hook "$id" PostStart &&
	now_us && wait_term_trap "$WORK/pid" $((REPLY + 10000000)) &&
	rt hookrun stop "$id" </dev/null >/dev/null 2>>"$WORK/err" && check_hook "$id" PreStop &&
	rt hookrun delete "$id" </dev/null >/dev/null 2>>"$WORK/err"; }; then
	LIFECYCLE=0
	log "warning: hookrun's lifecycle hooks do not work, skipping the lifecycle benchmarks: $(tr '\n' ' ' <"$WORK/err")"
	rt hookrun delete -f "$id" </dev/null >/dev/null 2>&1
fi

# One long-running container per runtime for `exec`, created and started once.
EXEC_ID=exec-$$
EXEC_RTS=()
for r in "${ACTIVE[@]}"; do
	if rt "$r" create --bundle "$SLEEP_BUNDLE" "$EXEC_ID" </dev/null >/dev/null 2>"$WORK/err" &&
		rt "$r" start "$EXEC_ID" </dev/null >/dev/null 2>"$WORK/err"; then
		EXEC_RTS+=("$r")
	else
		fail "$r" exec "$EXEC_ID"
	fi
done

HAVE_TIME=1
if [[ ! -x /usr/bin/time ]] || ! /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
	HAVE_TIME=0
	log "note: GNU time (/usr/bin/time, Debian package 'time') is missing: no peak RSS"
fi

# --- measure ------------------------------------------------------------------
K=${#ACTIVE[@]}
# rotated I: the active runtimes, starting at index I mod K (spreads drift and noise).
rotated() { local j; ORDER=(); for ((j = 0; j < K; j++)); do ORDER+=("${ACTIVE[($1 + j) % K]}"); done; }
in_exec() { [[ " ${EXEC_RTS[*]} " == *" $1 "* ]]; }

# iteration I PREFIX [RECORD]: every benchmark once per runtime, runtimes in rotated order.
iteration() {
	local r
	rotated "$1"
	for r in "${ORDER[@]}"; do bench_run "$r" "${2}r$1-$$" ${3:-}; done
	for r in "${ORDER[@]}"; do bench_cycle "$r" "${2}c$1-$$" ${3:-}; done
	for r in "${ORDER[@]}"; do in_exec "$r" && bench_exec "$r" ${3:-}; done
	((LIFECYCLE)) || return 0
	for r in "${ORDER[@]}"; do bench_poststart "$r" "${2}p$1-$$" ${3:-}; done
	for r in "${ORDER[@]}"; do bench_stop "$r" "${2}s$1-$$" ${3:-}; done
}

log "warm-up: $WARMUP iteration(s) per runtime"
for ((i = 0; i < WARMUP; i++)); do iteration "$i" w; done
log "timing: $N iteration(s) per runtime, runtimes alternating"
for ((i = 0; i < N; i++)); do
	iteration "$i" "" 1
	(((i + 1) % 10 == 0 || i + 1 == N)) && log "  $((i + 1))/$N"
done
for r in "${EXEC_RTS[@]}"; do
	rt "$r" delete -f "$EXEC_ID" </dev/null >/dev/null 2>&1 || log "warning: $r delete -f $EXEC_ID failed"
done
if ((HAVE_TIME)); then
	log "peak RSS: $RSS_N run(s) per runtime under /usr/bin/time -f %M"
	for ((i = 0; i < RSS_N; i++)); do
		rotated "$i"
		for r in "${ORDER[@]}"; do bench_rss "$r" "m$i-$$"; done
	done
fi

# list_time RUNTIME: median wall time (µs) of 5 `list` calls, in REPLY.
list_time() {
	local k t0 v=()
	for k in 1 2 3 4 5; do
		now_us; t0=$REPLY
		rt "$1" list </dev/null >/dev/null 2>"$WORK/err" || { fail "$1" list; REPLY=; return; }
		now_us; v+=($((REPLY - t0)))
	done
	REPLY=$(printf '%s\n' "${v[@]}" | sort -n | sed -n 3p)
}
# bench_list RUNTIME: `list` with no container and with LIST_N running `sleep` containers; the
# growth per container, in ns, is (t_N - t_0) / N. One runtime at a time, all removed after.
bench_list() {
	local r=$1 i t_empty t_full
	list_time "$r"; t_empty=$REPLY
	[[ -n $t_empty ]] || return
	for ((i = 0; i < LIST_N; i++)); do
		rt "$r" run -d --bundle "$SLEEP_BUNDLE" "l$i-$$" </dev/null >/dev/null 2>"$WORK/err" ||
			{ fail "$r" list "l$i-$$"; break; }
	done
	if ((i == LIST_N)); then
		list_time "$r"; t_full=$REPLY
		[[ -z $t_full ]] || echo $(((t_full - t_empty) * 1000 / LIST_N)) >>"$WORK/res/$r.list"
	fi
	for ((i = 0; i < LIST_N; i++)); do
		rt "$r" delete -f "l$i-$$" </dev/null >/dev/null 2>&1
	done
}
if ((LIST_N > 0)); then
	log "list: $LIST_N running containers per runtime, one runtime at a time"
	for r in "${ACTIVE[@]}"; do bench_list "$r"; done
fi

for key in "${!FAILS[@]}"; do echo "$key ${FAILS[$key]}"; done >"$WORK/res/fails"
if [[ -n ${BENCH_RAW_DIR:-} ]]; then
	mkdir -p "$BENCH_RAW_DIR" && cp "$WORK"/res/* "$BENCH_RAW_DIR"/ && log "raw numbers copied to $BENCH_RAW_DIR"
fi

# --- report -------------------------------------------------------------------
"$PYTHON" - "$WORK/res" "$N" "$RSS_N" "$WARMUP" "${BENCH_IN_NS:-}" "$LIFECYCLE" "${ACTIVE[@]}" <<'EOF'
import math, os, sys

res, n, rss_n, warmup, in_ns, lifecycle, active = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
    sys.argv[6] == "1", sys.argv[7:])

def load(name):
    try:
        with open(os.path.join(res, name)) as f:
            return sorted(float(x) for x in f.read().split())
    except FileNotFoundError:
        return []

def median(v):
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2

def p90(v):  # nearest rank
    return v[max(0, math.ceil(0.9 * len(v)) - 1)] if v else None

fails = {}
with open(os.path.join(res, "fails")) as f:
    for line in f:
        k, c = line.split()
        fails[k] = int(c)

def fmt(x, spec):
    return "-" if x is None else format(x, spec)

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b

meds = {}
print()
print(f"hookrun benchmark: {n} timed iterations per runtime (after {warmup} warm-up), "
      f"{os.cpu_count()} CPUs" + (", private mount namespace without the cgroup v2 mount" if in_ns else ""))
BENCHES = (
    ("run", "run /bin/true", None),
    ("cycle", "create/start/wait/delete", None),
    ("create", "create", "the create step of create/start/wait/delete, timed on its own"),
    ("exec", "exec /bin/true", "into a running `sleep 100000` container"),
    ("poststart", "start + PostStart exec", "hookrun: start (returns after PostStart exec /bin/true); "
     "runc, crun: start && exec /bin/true"),
    ("stop", "stop with PreStop exec", "hookrun: stop (PreStop exec /bin/true, SIGTERM, exit); "
     "runc, crun: exec /bin/true && kill TERM && poll state until stopped"),
)
if not lifecycle:
    print("(lifecycle benchmarks skipped: hookrun's hooks did not work, see the log above)")
for bench, title, note in BENCHES:
    print()
    if note:
        print(f"{title}: {note}")
    print(f"{title:<26}{'median ms':>10}{'min ms':>8}{'p90 ms':>9}{'ratio vs runc':>15}{'ratio vs crun':>15}{'ok/failed':>11}")
    for r in active:
        meds[(bench, r)] = median([x / 1e6 for x in load(f"{r}.{bench}")])
    for r in active:
        v = [x / 1e6 for x in load(f"{r}.{bench}")]
        m = meds[(bench, r)]
        print(f"  {r:<24}{fmt(m, '.2f'):>10}{fmt(v[0] if v else None, '.2f'):>8}{fmt(p90(v), '.2f'):>9}"
              f"{fmt(ratio(m, meds.get((bench, 'runc'))), '.2f'):>15}"
              f"{fmt(ratio(m, meds.get((bench, 'crun'))), '.2f'):>15}"
              f"{len(v):>6}/{fails.get(f'{r}/{bench}', 0)}")

have_rss = any(load(f"{r}.rss") for r in active)
if have_rss:
    print()
    print(f"{'peak RSS of run (KiB)':<26}{'median':>10}{'max':>9}{'ratio vs runc':>15}{'ratio vs crun':>15}{'ok/failed':>11}")
    for r in active:
        meds[("rss", r)] = median(load(f"{r}.rss"))
    for r in active:
        v = load(f"{r}.rss")
        m = meds[("rss", r)]
        print(f"  {r:<24}{fmt(m, '.0f'):>10}{fmt(v[-1] if v else None, '.0f'):>9}"
              f"{fmt(ratio(m, meds.get(('rss', 'runc'))), '.2f'):>15}"
              f"{fmt(ratio(m, meds.get(('rss', 'crun'))), '.2f'):>15}"
              f"{len(v):>6}/{fails.get(f'{r}/rss', 0)}")

have_list = any(load(f"{r}.list") for r in active)
if have_list:
    print()
    print(f"{'list, growth/container':<26}{'us':>10}{'':>9}{'ratio vs runc':>15}{'ratio vs crun':>15}")
    for r in active:
        v = load(f"{r}.list")
        meds[("list", r)] = v[0] / 1e3 if v else None
    for r in active:
        m = meds[("list", r)]
        print(f"  {r:<24}{fmt(m, '.1f'):>10}{'':>9}"
              f"{fmt(ratio(m, meds.get(('list', 'runc'))), '.2f'):>15}"
              f"{fmt(ratio(m, meds.get(('list', 'crun'))), '.2f'):>15}")

print()
print("targets (from the issues):")
ok = True
def target(label, key, factor, unit, spec, other="runc"):
    global ok
    h, base = meds.get((key, "hookrun")), meds.get((key, other))
    if h is None or base is None:
        ok = False
        print(f"  [SKIP] {label}: no hookrun or {other} numbers")
        return
    passed = h <= factor * base
    ok = ok and passed
    lim = f"{factor} x " if factor != 1 else ""
    print(f"  [{'PASS' if passed else 'FAIL'}] {label}: hookrun {h:{spec}} {unit} <= {lim}{other} "
          f"{base:{spec}} {unit}  (ratio {h / base:.2f})")
target("run /bin/true median", "run", 0.5, "ms", ".2f")
target("create/start/wait/delete median", "cycle", 0.5, "ms", ".2f")
target("exec /bin/true median", "exec", 0.5, "ms", ".2f")
target("start to PostStart done median (runc: start+exec)", "poststart", 0.5, "ms", ".2f")
target("stop with PreStop median (runc: exec+kill+wait)", "stop", 0.5, "ms", ".2f")
target("peak RSS of run (median)", "rss", 1, "KiB", ".0f")
print("against crun (issue 12, 'Faster and smaller than crun on every row'):")
target("run /bin/true median", "run", 0.8, "ms", ".2f", "crun")
target("create/start/wait/delete median", "cycle", 0.7, "ms", ".2f", "crun")
target("create median", "create", 0.8, "ms", ".2f", "crun")
target("exec /bin/true median", "exec", 0.6, "ms", ".2f", "crun")
target("peak RSS of run (median)", "rss", 1, "KiB", ".0f", "crun")
if have_list:
    target("list growth per container", "list", 1, "us", ".1f", "crun")
sys.exit(0 if ok else 3)
EOF
rc=$?
if ((rc != 0 && rc != 3)); then
	die "the report failed"
fi
if ((rc == 3)); then
	if [[ $STRICT == 1 ]]; then
		log "BENCH_STRICT=1 and a target failed"
		exit 1
	fi
	log "a target failed (informational; BENCH_STRICT=1 makes this an error)"
fi
exit 0
