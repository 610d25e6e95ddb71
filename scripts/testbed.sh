#!/usr/bin/env bash
# testbed.sh: a real Slurm and a real sshd on 127.0.0.1 for hpcbot's integration tests.
#
# Usage: scripts/testbed.sh start [--accounting|--no-accounting]
#        scripts/testbed.sh stop | status | env | sshd-stop | sshd-start
#
#   start       install what is missing (apt-get), then start munged, sshd on
#               127.0.0.1:$HPCBOT_TESTBED_SSH_PORT (2222), slurmctld + slurmd (one node,
#               partition "debug") and, with accounting, mariadb + slurmdbd; then prove the
#               whole path: the test user submits `sbatch --wait --wrap true` over the
#               test sshd with the generated key. Idempotent: a second start with everything
#               up only re-runs that check. Exits non-zero with the daemons' log tails.
#   stop        cancel the bed's jobs and stop every daemon this script started.
#   status      one line per daemon; exit 0 when everything the bed needs is up.
#   env         `export VAR=...` lines for the tests: eval "$(scripts/testbed.sh env)".
#   sshd-stop [PORT]   simulate the login node going away: stop the test sshd and close
#               every open connection to it. Slurm jobs and detached (setsid/nohup)
#               processes keep running. sshd-start brings it back (same host key and port).
#               With a PORT other than the main one's, they act on an extra sshd of that
#               port (same user, key and host key; its known_hosts is ssh/known_hosts-PORT),
#               which one test can take down without taking it from every other test.
#   sshd-remove PORT   stop the extra sshd on PORT and delete its files.
#
# Environment:
#   HPCBOT_TESTBED_DIR         state dir (keys, configs, logs, Slurm state) [/tmp/hpcbot-testbed]
#   HPCBOT_TESTBED_SSH_PORT    port of the test sshd [2222]
#   HPCBOT_TESTBED_USER        the test user [hpctest]
#   HPCBOT_TESTBED_SLURM_PORT  slurmctld's port; slurmd listens on the next, slurmdbd on the
#                              one after [6817]
#   HPCBOT_TESTBED_ACCOUNTING  1: start with slurmdbd; 0: without; unset: keep the current mode
#                              (--accounting / --no-accounting say the same)
#
# Needs root (apt-get, daemons, the test user) except for `env` and `status`. Never uses
# systemd: every daemon is started directly and detaches, so it outlives this script.
# Listens on 127.0.0.1 only. Developed against Debian 12 (slurm-wlm 22.05.8, munge 0.5.15,
# openssh-server 9.2p1, mariadb 10.11).
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
DIR=${HPCBOT_TESTBED_DIR:-/tmp/hpcbot-testbed}
[[ $DIR == /* ]] || DIR=$PWD/$DIR
SSH_PORT=${HPCBOT_TESTBED_SSH_PORT:-} # empty: the running main sshd's port, else 2222
TUSER=${HPCBOT_TESTBED_USER:-hpctest}
CTLD_PORT=${HPCBOT_TESTBED_SLURM_PORT:-6817}
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
ADDR=127.0.0.1
CLUSTER=hpcbot
ACCOUNT=hpcbot

SSHDIR=$DIR/ssh
KEY=$SSHDIR/id_ed25519
HOSTKEY=$SSHDIR/ssh_host_ed25519_key
MAIN_SSHD_CONFIG=$SSHDIR/sshd_config
# Set by use_sshd for the sshd instance at hand (the main one unless a port is named).
KNOWN_HOSTS=$SSHDIR/known_hosts
SSHD_CONFIG=$MAIN_SSHD_CONFIG
SSHD_PID=$SSHDIR/sshd.pid
SSHD_LOG=$SSHDIR/sshd.log

SLURMDIR=$DIR/slurm
SLURM_CONF=/etc/slurm/slurm.conf
CGROUP_CONF=/etc/slurm/cgroup.conf
SLURMDBD_CONF=/etc/slurm/slurmdbd.conf
CTLD_PID=$SLURMDIR/slurmctld.pid
SLURMD_PID=$SLURMDIR/slurmd.pid
DBD_PID=$SLURMDIR/slurmdbd.pid

DBDIR=$DIR/db
DB_PID=/run/mysqld/mysqld.pid
DB_LOG=$DBDIR/mariadb.err
DB_PASS=$DBDIR/slurm.pass

MUNGE_PID=/run/munge/munged.pid
MUNGE_LOG=/var/log/munge/munged.log

ACCT_MARK=$DIR/accounting         # present: the bed runs with slurmdbd
OURS=$DIR/ours                    # munged/mariadb started by this script (so stop stops them)

MARK="# written by hpcbot scripts/testbed.sh; rewritten on every start"

log() { printf 'testbed: [%2ds] %s\n' "$SECONDS" "$*" >&2; }

# tails prints the end of every daemon log the bed has, for a failed start.
tails() {
	local f
	for f in "$SSHD_LOG" "$MUNGE_LOG" "$SLURMDIR/slurmctld.log" "$SLURMDIR/slurmd.log" \
		"$SLURMDIR/slurmdbd.log" "$DB_LOG"; do
		[[ -s $f ]] || continue
		printf '\n----- tail %s -----\n' "$f" >&2
		tail -n 25 "$f" >&2 || true
	done
}

fail() {
	log "FAILED: $*"
	tails
	exit 1
}

need_root() {
	[[ $(id -u) == 0 ]] || { log "$1 needs root (apt-get, daemons, the test user)"; exit 1; }
}

# running PID: the process exists and is not a zombie. A daemon's parent is PID 1, and
# in a container PID 1 may be slow to reap, or never reap, its dead children.
#
# Files under /proc vanish at any moment: they are read with `read`, never with $(<f),
# which under set -e ends bash 5.2 silently when the file is gone.
running() {
	local stat=''
	read -r stat 2>/dev/null <"/proc/$1/stat" || [[ -n $stat ]] || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# alive FILE COMM: the pid in FILE is a running process whose name is COMM; it is left
# in ALIVE_PID. Works unprivileged (reads /proc), so env and status need no root.
alive() {
	local p='' comm=''
	ALIVE_PID=
	read -r p 2>/dev/null <"$1" || [[ -n $p ]] || return 1
	[[ $p =~ ^[0-9]+$ ]] || return 1
	read -r comm 2>/dev/null <"/proc/$p/comm" || [[ -n $comm ]] || return 1
	[[ $comm == "$2" ]] && running "$p" || return 1
	ALIVE_PID=$p
}

pidof_file() { [[ -r $1 ]] && cat "$1"; }

# kill_wait PID...: TERM, wait up to 15 s, then KILL.
kill_wait() {
	local p i
	[[ $# -gt 0 ]] || return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		for p in "$@"; do running "$p" && break; p=; done
		[[ -z ${p:-} ]] && return 0
		sleep 0.1
	done
	log "still running after 15 s, killing: $*"
	kill -KILL "$@" 2>/dev/null || true
}

# stop_daemon FILE COMM: stop the daemon whose pid is in FILE, if it is one.
stop_daemon() {
	if alive "$1" "$2"; then
		log "stopping $2"
		kill_wait "$ALIVE_PID"
	fi
	rm -f "$1"
}

# sshd_tree PID: the sshd processes below PID (per connection: the monitor and the
# user's privilege-separated child, which holds the socket). The user's own processes
# are left to what their session's end does to them, as on a real login node.
# From /proc, since procps may be absent; through cat, which goes on past a process
# that exits meanwhile, where mawk given the files would stop at the first one gone.
sshd_tree() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{
		comm = $0; sub(/^[0-9]+ \(/, "", comm); sub(/\) [^)]*$/, "", comm)
		rest = $0; sub(/.*\) /, "", rest); split(rest, f, " ")
		parent[$1] = f[2] + 0; name[$1] = comm
	}
	END {
		for (p in parent) {
			if (name[p] != "sshd") continue
			for (q = parent[p]; q > 1; q = parent[q] + 0)
				if (q == root + 0) { print p; break }
		}
	}' || true
}

node_name() { hostname -s 2>/dev/null || uname -n | cut -d. -f1; }

accounting_wanted() {
	case ${WANT_ACCOUNTING:-${HPCBOT_TESTBED_ACCOUNTING:-}} in
	1 | true | yes) return 0 ;;
	0 | false | no) return 1 ;;
	*) [[ -e $ACCT_MARK ]] ;;
	esac
}

# ---------------------------------------------------------------- packages

install_packages() {
	# sudo: the local scheduler's run_as tests switch to the test user through it.
	# xtb: a real quantum-chemistry program for the end-to-end tests of the xtb runner
	# (the Slurm node runs on this machine, so its jobs find /usr/bin/xtb).
	local pkgs=(munge slurm-wlm openssh-server sudo xtb) missing=() p policy=
	if accounting_wanted; then pkgs+=(mariadb-server slurmdbd); fi
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "installing ${missing[*]}"
	# Keep the packages' maintainer scripts from starting services (systemd or init.d):
	# this script starts every daemon itself, with its own configuration.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get -o Acquire::Retries=3 update -qq ||
		! apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		[[ -n $policy ]] && rm -f "$policy"
		fail "apt-get install ${missing[*]}"
	fi
	[[ -n $policy ]] && rm -f "$policy"
	return 0
}

# ---------------------------------------------------------------- user and keys

setup_user() {
	local home group
	if ! id -u "$TUSER" >/dev/null 2>&1; then
		log "creating user $TUSER"
		useradd --create-home --shell /bin/bash --comment "hpcbot test bed" "$TUSER"
	fi
	# "!" (locked) makes sshd refuse the user when UsePAM is off; "*" only means "no password".
	[[ $(getent shadow "$TUSER" | cut -d: -f2) == '*' ]] || usermod -p '*' "$TUSER"
	home=$(getent passwd "$TUSER" | cut -d: -f6)
	group=$(id -gn "$TUSER")
	[[ -d $home ]] || install -d -m 755 -o "$TUSER" -g "$group" "$home"

	install -d -m 755 "$DIR" "$SSHDIR"
	[[ -s $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "hpcbot-testbed-$TUSER" -f "$KEY"
	[[ -s $HOSTKEY ]] || ssh-keygen -q -t ed25519 -N '' -C "hpcbot-testbed-host" -f "$HOSTKEY"
	# A developer who ran this through sudo can then run the tests as themself.
	if [[ -n ${SUDO_UID:-} && -n ${SUDO_GID:-} ]]; then chown "$SUDO_UID:$SUDO_GID" "$KEY" "$KEY.pub"; fi

	install -d -m 700 -o "$TUSER" -g "$group" "$home/.ssh"
	install -m 600 -o "$TUSER" -g "$group" "$KEY.pub" "$home/.ssh/authorized_keys"
}

# ---------------------------------------------------------------- sshd

# The main sshd is the one `env` exports. Extra instances, named by their port
# (`sshd-start PORT`), share its host key, user and key: a test that stops "its" login
# node uses one of those, so that the packages testing concurrently against the main
# one keep it.

main_port() { awk '$1 == "Port" { print $2; exit }' "$MAIN_SSHD_CONFIG" 2>/dev/null || true; }

# use_sshd [PORT]: point SSH_PORT, SSHD_CONFIG, SSHD_PID, SSHD_LOG and KNOWN_HOSTS at the
# instance on PORT; the main instance when PORT is empty or the main one's.
use_sshd() {
	local main
	main=$(main_port)
	SSH_PORT=${1:-${main:-2222}}
	if ! [[ $SSH_PORT =~ ^[0-9]{1,5}$ ]] || ((SSH_PORT < 1 || SSH_PORT > 65535)); then
		log "bad port: $SSH_PORT"
		exit 2
	fi
	[[ -z ${1:-} || $1 == "$main" ]] && return 0
	SSHD_CONFIG=$SSHDIR/sshd-$SSH_PORT.config
	SSHD_PID=$SSHDIR/sshd-$SSH_PORT.pid
	SSHD_LOG=$SSHDIR/sshd-$SSH_PORT.log
	KNOWN_HOSTS=$SSHDIR/known_hosts-$SSH_PORT
}

write_known_hosts() {
	local hostpat=$ADDR
	[[ $SSH_PORT == 22 ]] || hostpat="[$ADDR]:$SSH_PORT"
	printf '%s %s\n' "$hostpat" "$(cut -d' ' -f1,2 "$HOSTKEY.pub")" >"$KNOWN_HOSTS.tmp"
	chmod 644 "$KNOWN_HOSTS.tmp"
	mv "$KNOWN_HOSTS.tmp" "$KNOWN_HOSTS"
}

sshd_config() {
	cat <<EOF
$MARK
Port $SSH_PORT
ListenAddress $ADDR
HostKey $HOSTKEY
PidFile $SSHD_PID
AllowUsers $TUSER
PermitRootLogin no
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
AuthorizedKeysFile .ssh/authorized_keys
# OpenSSH's defaults, spelled out because the SSH client is tuned against them.
MaxSessions 10
MaxStartups 10:30:100
LoginGraceTime 30
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

listening() { (exec 3<>"/dev/tcp/$ADDR/$SSH_PORT") 2>/dev/null; }

start_sshd() {
	local i
	sshd_config >"$SSHD_CONFIG.tmp"
	if alive "$SSHD_PID" sshd; then
		if cmp -s "$SSHD_CONFIG.tmp" "$SSHD_CONFIG"; then
			rm -f "$SSHD_CONFIG.tmp"
			return 0
		fi
		# A new configuration (another port, a newer script): SIGHUP makes sshd re-exec
		# with it, and the connections it has keep going.
		/usr/sbin/sshd -t -f "$SSHD_CONFIG.tmp" || fail "sshd -t rejected $SSHD_CONFIG.tmp"
		mv "$SSHD_CONFIG.tmp" "$SSHD_CONFIG"
		write_known_hosts
		log "reloading sshd (pid $ALIVE_PID) on $ADDR:$SSH_PORT"
		kill -HUP "$ALIVE_PID"
	else
		listening && fail "something else listens on $ADDR:$SSH_PORT (set HPCBOT_TESTBED_SSH_PORT)"
		mv "$SSHD_CONFIG.tmp" "$SSHD_CONFIG"
		write_known_hosts
		install -d -m 755 /run/sshd # privilege separation directory
		/usr/sbin/sshd -t -f "$SSHD_CONFIG" || fail "sshd -t rejected $SSHD_CONFIG"
		log "starting sshd on $ADDR:$SSH_PORT"
		/usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG" || fail "sshd did not start"
	fi
	for ((i = 0; i < 100; i++)); do
		alive "$SSHD_PID" sshd && listening && return 0
		sleep 0.1
	done
	fail "sshd is not listening on $ADDR:$SSH_PORT"
}

# stop_sshd stops the listener and closes every connection it accepted, as a login
# node that goes down would.
stop_sshd() {
	local master conns
	if ! alive "$SSHD_PID" sshd; then
		rm -f "$SSHD_PID"
		return 0
	fi
	master=$ALIVE_PID
	conns=$(sshd_tree "$master" | sort -n | tr '\n' ' ')
	log "stopping sshd (pid $master; connection processes: ${conns:-none})"
	# shellcheck disable=SC2086
	kill_wait "$master" $conns
	rm -f "$SSHD_PID"
}

# ssh_user runs a command as the test user through the test sshd, exactly the way
# hpcbot reaches a cluster: key auth, host key checked against the written known_hosts.
ssh_user() {
	timeout 120 ssh -F /dev/null -i "$KEY" -p "$SSH_PORT" -l "$TUSER" \
		-o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
		-o ConnectTimeout=10 -o LogLevel=ERROR "$ADDR" "$@"
}

# ---------------------------------------------------------------- munge

munge_ok() { timeout 10 munge -n </dev/null 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; }

start_munge() {
	munge_ok && return 0
	local key=/etc/munge/munge.key
	install -d -m 700 -o munge -g munge /etc/munge /var/lib/munge /var/log/munge
	install -d -m 755 -o munge -g munge /run/munge
	if [[ ! -s $key ]]; then
		log "creating $key"
		mungekey --create --keyfile="$key" 2>/dev/null ||
			dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
	fi
	chown munge:munge "$key"
	chmod 400 "$key"
	log "starting munged"
	# --force: start over a stale socket left by a munged that was killed.
	runuser -u munge -- /usr/sbin/munged --force || fail "munged did not start"
	mark_ours munged
	local i
	for ((i = 0; i < 50; i++)); do munge_ok && return 0; sleep 0.2; done
	fail "munge does not encode/decode credentials"
}

mark_ours() { install -d -m 755 "$OURS" && touch "$OURS/$1"; }

# ---------------------------------------------------------------- slurm

# node_hw prints the hardware part of the NodeName line as slurmd detects it, so the
# node never drains for "Low RealMemory" or a CPU count mismatch.
node_hw() {
	local line cpus mem
	line=$(slurmd -C 2>/dev/null | head -n 1 || true)
	if [[ $line == NodeName=* ]]; then
		line=${line#NodeName=* }
		echo "$line"
		return
	fi
	cpus=$(nproc)
	mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
	echo "CPUs=$cpus RealMemory=$mem"
}

slurm_conf() {
	local node=$1 hw=$2
	cat <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$node($ADDR)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$SLURMDIR/state
SlurmdSpoolDir=$SLURMDIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$SLURMDIR/slurmctld.log
SlurmdLogFile=$SLURMDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: this runs as root in a container without systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Finished jobs leave slurmctld's memory after 2 s (Slurm's smallest recommended value,
# what busy sites run): code that polls must not rely on seeing them.
MinJobAge=2
ReturnToService=2
InactiveLimit=0
KillWait=5
Waittime=0
# Schedule a batch job when it is submitted, not up to 3 s later (the default): a job
# that runs "true" then ends within about a second, which keeps the test suites short.
SchedulerParameters=batch_sched_delay=0
EOF
	if accounting_wanted; then
		cat <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$ADDR
AccountingStoragePort=$DBD_PORT
JobCompType=jobcomp/none
EOF
	else
		echo "AccountingStorageType=accounting_storage/none"
	fi
	cat <<EOF
NodeName=$node NodeAddr=$ADDR $hw State=UNKNOWN
# Several test packages share the bed at once: every CPU takes up to 4 jobs.
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE OverSubscribe=FORCE:4 State=UP
EOF
}

# cgroup_conf: slurmd 22.05 loads a cgroup plugin even when nothing uses cgroups, and
# "autodetect" fails in a container: with no cgroup file system mounted, and with a
# read-only cgroup v2 (it tries to create a scope). cgroup/v1 does nothing when loaded,
# and with proctrack/linuxproc, task/none and jobacct_gather/none nothing asks it for
# more. (CgroupPlugin=disabled exists only from Slurm 24.05 on.)
cgroup_conf() {
	cat <<EOF
$MARK
CgroupPlugin=cgroup/v1
EOF
}

# install_conf FILE MODE: install stdin as FILE unless FILE already has it; a file this
# script did not write is kept once as FILE.pre-testbed. Succeeds when FILE changed.
install_conf() {
	cat >"$1.tmp"
	if cmp -s "$1.tmp" "$1"; then
		rm -f "$1.tmp"
		return 1
	fi
	if [[ -e $1 ]] && ! grep -qF "$MARK" "$1" && [[ ! -e $1.pre-testbed ]]; then
		cp -p "$1" "$1.pre-testbed"
		log "kept the previous $1 as $1.pre-testbed"
	fi
	chmod "$2" "$1.tmp"
	mv "$1.tmp" "$1"
	log "wrote $1"
}

ctld_ok() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

# Parameters that `scontrol reconfigure` does not apply: a change restarts the daemons.
RESTART_KEYS='^(ClusterName|SlurmctldHost|SlurmUser|SlurmdUser|AuthType|SlurmctldPort|SlurmdPort|StateSaveLocation|SlurmdSpoolDir|SlurmctldPidFile|SlurmdPidFile|SlurmctldLogFile|SlurmdLogFile|ProctrackType|TaskPlugin|SwitchType|MpiDefault|SelectType|SelectTypeParameters|AccountingStorage[A-Za-z]*|JobAcctGatherType|JobCompType|NodeName)='

# write_slurm_conf writes slurm.conf and cgroup.conf. CONF_CHANGED=1: restart both
# daemons; CONF_RECONF=1: slurm.conf changed in ways `scontrol reconfigure` applies;
# SLURMD_CONF_CHANGED=1: cgroup.conf changed (restart slurmd, which alone reads it).
write_slurm_conf() {
	local node hw before after
	node=$(node_name)
	hw=$(node_hw)
	install -d -m 755 "$SLURMDIR" "$SLURMDIR/state" "$SLURMDIR/spool" /etc/slurm
	CONF_CHANGED=0 CONF_RECONF=0 SLURMD_CONF_CHANGED=0
	before=$(grep -E "$RESTART_KEYS" "$SLURM_CONF" 2>/dev/null || true)
	if slurm_conf "$node" "$hw" | install_conf "$SLURM_CONF" 644; then
		after=$(grep -E "$RESTART_KEYS" "$SLURM_CONF" || true)
		if [[ $before == "$after" ]]; then CONF_RECONF=1; else CONF_CHANGED=1; fi
	fi
	if cgroup_conf | install_conf "$CGROUP_CONF" 644; then SLURMD_CONF_CHANGED=1; fi
}

# start_slurm starts slurmctld and slurmd, restarting them when the configuration
# changed (accounting switched, other hardware); running jobs survive that (slurmctld
# saves them under StateSaveLocation, and slurmstepd does not belong to slurmd).
start_slurm() {
	local node i
	node=$(node_name)
	if [[ $CONF_CHANGED == 1 || ${SLURMD_CONF_CHANGED:-0} == 1 ]]; then
		stop_daemon "$SLURMD_PID" slurmd
	fi
	if [[ $CONF_CHANGED == 1 ]]; then
		stop_daemon "$CTLD_PID" slurmctld
	elif [[ ${CONF_RECONF:-0} == 1 ]] && alive "$CTLD_PID" slurmctld; then
		log "scontrol reconfigure"
		scontrol reconfigure || fail "scontrol reconfigure"
	fi
	if ! alive "$CTLD_PID" slurmctld; then
		log "starting slurmctld"
		slurmctld || fail "slurmctld did not start"
	fi
	for ((i = 0; i < 150; i++)); do ctld_ok && break; sleep 0.2; done
	ctld_ok || fail "slurmctld does not answer scontrol ping"
	if ! alive "$SLURMD_PID" slurmd; then
		log "starting slurmd"
		slurmd || fail "slurmd did not start"
	fi
	wait_node "$node"
}

# wait_node waits until the node takes jobs; a node left down or drained by an earlier
# run (slurmd killed, hardware changed) is resumed once.
wait_node() {
	local node=$1 state i resumed=0
	for ((i = 0; i < 300; i++)); do
		state=$(timeout 10 sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n 1 || true)
		case $state in
		idle | mixed | allocated | completing) return 0 ;;
		down* | drain* | fail*)
			if [[ $resumed == 0 ]] && alive "$SLURMD_PID" slurmd && ((i > 10)); then
				log "node $node is $state ($(scontrol show node "$node" | grep -o 'Reason=.*' || true)); resuming it"
				scontrol update NodeName="$node" State=RESUME 2>/dev/null || true
				resumed=1
			fi
			;;
		esac
		sleep 0.2
	done
	fail "node $node is not ready (sinfo says: ${state:-nothing})"
}

# ---------------------------------------------------------------- accounting

db_ok() { timeout 10 mariadb-admin --no-defaults --protocol=socket -uroot ping >/dev/null 2>&1 ||
	timeout 10 mariadb-admin ping >/dev/null 2>&1; }

start_mariadb() {
	db_ok && return 0
	install -d -m 755 -o mysql -g mysql /run/mysqld "$DBDIR"
	if [[ ! -d /var/lib/mysql/mysql ]]; then
		log "initialising /var/lib/mysql"
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$DBDIR/install.log" 2>&1 ||
			fail "mariadb-install-db (see $DBDIR/install.log)"
	fi
	log "starting mariadbd"
	# No TCP at all: slurmdbd reaches it through the socket in /run/mysqld.
	setsid -f /usr/sbin/mariadbd --user=mysql --skip-networking --pid-file="$DB_PID" \
		--log-error="$DB_LOG" </dev/null >/dev/null 2>&1
	mark_ours mariadb
	local i
	for ((i = 0; i < 300; i++)); do db_ok && return 0; sleep 0.2; done
	fail "mariadbd does not answer ping"
}

dbd_ok() { timeout 10 sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }

start_slurmdbd() {
	local pass node
	node=$(node_name)
	[[ -s $DB_PASS ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS"; chmod 600 "$DB_PASS"; }
	read -r pass <"$DB_PASS" || [[ -n $pass ]]
	# The password never reaches a command line: mariadb reads the SQL from stdin.
	mariadb --protocol=socket -uroot <<EOF || fail "creating the accounting database"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
	umask 077
	cat >"$SLURMDBD_CONF.tmp" <<EOF
$MARK
AuthType=auth/munge
DbdHost=$node
DbdAddr=$ADDR
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DBD_PID
LogFile=$SLURMDIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
EOF
	umask 022
	chmod 600 "$SLURMDBD_CONF.tmp"
	if ! cmp -s "$SLURMDBD_CONF.tmp" "$SLURMDBD_CONF"; then
		mv "$SLURMDBD_CONF.tmp" "$SLURMDBD_CONF"
		stop_daemon "$DBD_PID" slurmdbd
	else
		rm -f "$SLURMDBD_CONF.tmp"
	fi
	if ! alive "$DBD_PID" slurmdbd; then
		log "starting slurmdbd"
		slurmdbd || fail "slurmdbd did not start"
	fi
}

# accounting_setup registers the cluster, an account and the test user. It needs
# slurm.conf to name slurmdbd, and must come before slurmctld starts with it: a
# slurmctld that registered before its cluster existed has no job records stored.
accounting_setup() {
	local i
	for ((i = 0; i < 300; i++)); do dbd_ok && break; sleep 0.2; done
	dbd_ok || fail "slurmdbd does not answer sacctmgr"
	if [[ -z $(sacctmgr -n -P show cluster "$CLUSTER" format=cluster 2>/dev/null) ]]; then
		sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null || fail "sacctmgr add cluster"
		CONF_CHANGED=1 # (re)start slurmctld so that it registers with the new cluster
	fi
	if [[ -z $(sacctmgr -n -P show account "$ACCOUNT" format=account 2>/dev/null) ]]; then
		sacctmgr -i -Q add account "$ACCOUNT" Cluster="$CLUSTER" Description="hpcbot test bed" \
			Organization=hpcbot >/dev/null || fail "sacctmgr add account"
	fi
	if [[ -z $(sacctmgr -n -P show user "$TUSER" format=user 2>/dev/null) ]]; then
		sacctmgr -i -Q add user "$TUSER" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null ||
			fail "sacctmgr add user"
	fi
}

stop_accounting() {
	stop_daemon "$DBD_PID" slurmdbd
	if [[ -e $OURS/mariadb ]]; then
		stop_daemon "$DB_PID" mariadbd
		rm -f "$OURS/mariadb"
	fi
}

# ctld_registered: slurmdbd knows where slurmctld listens (it registered).
ctld_registered() {
	local port
	port=$(timeout 10 sacctmgr -n -P show cluster "$CLUSTER" format=controlport 2>/dev/null || true)
	[[ -n $port && $port != 0 ]]
}

# wait_registered waits for slurmctld's registration with slurmdbd; a slurmctld that
# did not register (it started before its cluster existed) is restarted once.
wait_registered() {
	local i
	for ((i = 0; i < 50; i++)); do ctld_registered && return 0; sleep 0.2; done
	log "slurmctld is not registered with slurmdbd; restarting it"
	stop_daemon "$CTLD_PID" slurmctld
	CONF_CHANGED=0
	start_slurm
	for ((i = 0; i < 100; i++)); do ctld_registered && return 0; sleep 0.2; done
	fail "slurmctld does not register with slurmdbd"
}

# ---------------------------------------------------------------- the proof

smoke() {
	local out id
	log "checking: $TUSER submits over ssh (sbatch --wait --wrap true)"
	out=$(ssh_user 'cd && sbatch --parsable --wait --output=/dev/null --job-name=testbed-check --wrap true' 2>&1) ||
		fail "sbatch over ssh as $TUSER: $out"
	id=${out%%[;$'\n']*}
	if accounting_wanted; then
		local i
		for ((i = 0; i < 100; i++)); do
			out=$(ssh_user "sacct -n -X -P -j $id -o State" 2>&1) || true
			[[ $out == COMPLETED* ]] && return 0
			sleep 0.3
		done
		fail "sacct never showed job $id COMPLETED (last: $out)"
	fi
}

# ---------------------------------------------------------------- commands

cmd_start() {
	local t0=$SECONDS
	need_root start
	while [[ $# -gt 0 ]]; do
		case $1 in
		--accounting) WANT_ACCOUNTING=1 ;;
		--no-accounting) WANT_ACCOUNTING=0 ;;
		*) log "unknown option: $1"; exit 2 ;;
		esac
		shift
	done
	# Keys and configuration go there: a directory someone else made first is refused.
	if [[ -L $DIR ]] || { [[ -e $DIR ]] && [[ $(stat -c %u "$DIR") != 0 ]]; }; then
		fail "$DIR is a symbolic link or not root's: remove it or set HPCBOT_TESTBED_DIR"
	fi
	[[ -n $SSH_PORT ]] || SSH_PORT=$(main_port)
	SSH_PORT=${SSH_PORT:-2222}
	install -d -m 755 "$DIR" "$SLURMDIR" "$SLURMDIR/state" "$SLURMDIR/spool"
	install_packages
	setup_user
	start_sshd
	start_munge
	if accounting_wanted; then
		touch "$ACCT_MARK"
		start_mariadb
		start_slurmdbd
		write_slurm_conf
		accounting_setup
		start_slurm
		wait_registered
	else
		rm -f "$ACCT_MARK"
		write_slurm_conf
		start_slurm
		stop_accounting
	fi
	smoke
	log "up in $((SECONDS - t0)) s; next: eval \"\$($SCRIPT env)\""
}

cmd_stop() {
	need_root stop
	local i ids
	if alive "$CTLD_PID" slurmctld; then
		ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
		if [[ -n $ids ]]; then
			log "cancelling jobs: ${ids//$'\n'/ }"
			# shellcheck disable=SC2086
			scancel $ids 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				[[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
				sleep 0.2
			done
		fi
	fi
	stop_daemon "$SLURMD_PID" slurmd
	stop_daemon "$CTLD_PID" slurmctld
	stop_accounting
	local p
	for p in "$SSHDIR"/sshd-*.pid; do
		[[ -e $p ]] || continue
		p=${p##*/sshd-}
		(use_sshd "${p%.pid}" && stop_sshd)
	done
	use_sshd ""
	stop_sshd
	if [[ -e $OURS/munged ]]; then
		stop_daemon "$MUNGE_PID" munged
		rm -f "$OURS/munged"
	fi
	log "stopped (state kept in $DIR)"
}

line() { printf '%-10s %-8s %s\n' "$@"; }

cmd_status() {
	local bad=0 p
	check() { # name pidfile comm extra
		if alive "$2" "$3"; then
			line "$1" running "pid $ALIVE_PID $4"
		elif [[ -e $2 && ! -r $2 ]]; then
			line "$1" unknown "($2 is not readable: run as root)"
		else
			line "$1" stopped
			bad=1
		fi
	}
	check sshd "$SSHD_PID" sshd "$ADDR:$(main_port)"
	for p in "$SSHDIR"/sshd-*.pid; do
		[[ -e $p ]] || continue
		p=${p##*/sshd-}
		p=${p%.pid}
		use_sshd "$p"
		check "sshd:$p" "$SSHD_PID" sshd "(extra instance)"
	done
	if munge_ok; then line munged running "$(pidof_file "$MUNGE_PID" | sed 's/^/pid /')"; else line munged stopped; bad=1; fi
	check slurmctld "$CTLD_PID" slurmctld ""
	p=$(timeout 10 sinfo -h -N -o '%N %T' 2>/dev/null | head -n 1 || true)
	check slurmd "$SLURMD_PID" slurmd "${p:+node $p}"
	if [[ -e $ACCT_MARK ]]; then
		check mariadb "$DB_PID" mariadbd ""
		check slurmdbd "$DBD_PID" slurmdbd ""
	else
		line slurmdbd off "(start --accounting to enable)"
	fi
	return $bad
}

cmd_env() {
	local port
	emit() { printf 'export %s=%q\n' "$1" "$2"; }
	emit HPCBOT_TESTBED "$SCRIPT"
	emit HPCBOT_TESTBED_DIR "$DIR"
	if ! alive "$SSHD_PID" sshd || [[ ! -r $KNOWN_HOSTS || ! -e $KEY ]]; then
		log "sshd is not running: $SCRIPT start"
		return 0
	fi
	port=$(main_port)
	emit HPCBOT_TEST_SSH_HOST "$ADDR"
	emit HPCBOT_TEST_SSH_PORT "$port"
	emit HPCBOT_TEST_SSH_USER "$TUSER"
	emit HPCBOT_TEST_SSH_KEY "$KEY"
	emit HPCBOT_TEST_SSH_KNOWN_HOSTS "$KNOWN_HOSTS"
	emit HPCBOT_TEST_SSH_HOSTKEY_PUB "$HOSTKEY.pub"
	emit HPCBOT_TEST_SSHD_CONFIG "$SSHD_CONFIG"
	if alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd; then
		emit HPCBOT_TEST_SLURM 1
		if [[ -e $ACCT_MARK ]] && alive "$DBD_PID" slurmdbd; then
			emit HPCBOT_TEST_SLURM_ACCOUNTING 1
		fi
	fi
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	start) cmd_start "$@" ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	env) cmd_env ;;
	sshd-stop)
		need_root sshd-stop
		use_sshd "${1:-}"
		stop_sshd
		;;
	sshd-start)
		need_root sshd-start
		[[ -s $KEY && -s $HOSTKEY && -e $MAIN_SSHD_CONFIG ]] || fail "the bed was never started: $SCRIPT start"
		use_sshd "${1:-}"
		start_sshd
		;;
	sshd-remove)
		need_root sshd-remove
		[[ -n ${1:-} ]] || { log "sshd-remove needs the port of an extra sshd"; exit 2; }
		use_sshd "$1"
		[[ $SSHD_CONFIG != "$MAIN_SSHD_CONFIG" ]] || { log "sshd-remove: $1 is the main sshd's port"; exit 2; }
		stop_sshd
		rm -f "$SSHD_CONFIG" "$SSHD_LOG" "$KNOWN_HOSTS"
		;;
	*)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT" >&2
		exit 2
		;;
	esac
}

main "$@"
