#!/usr/bin/env bash
# Configures the vm-test guest: `vm-guest-setup.sh ROOT ROOT_PUBKEY
# GUEST_USER GUEST_PASSWORD`. `cargo xtask vm-test` runs it from mmdebstrap's
# customize hook on the image's root filesystem; scripts/Vagrantfile runs it
# on a live Debian box with ROOT=/ (then the box keeps its own disk,
# network and documentation). The image is built once and cached;
# everything that changes per run (the sensor binary, its config) is copied
# in over ssh after boot.
set -euo pipefail
root=$1 pubkey=$2 user=$3 password=$4

if [ "$root" != / ]; then
    echo vm-guest > "$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 vm-guest\n' > "$root/etc/hosts"
    echo '/dev/vda / ext4 rw,relatime 0 1' > "$root/etc/fstab"
    # QEMU's user network hands out addresses by DHCP; its DNS is 10.0.2.3.
    mkdir -p "$root/etc/systemd/network"
    printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' > "$root/etc/systemd/network/10-qemu.network"
    echo 'nameserver 10.0.2.3' > "$root/etc/resolv.conf"
    chroot "$root" systemctl enable systemd-networkd
fi

# Root logs in by key only (Debian's default prohibit-password); the weak
# user by password, which is what the scenario brute-forces.
install -d -m 700 "$root/root/.ssh"
install -m 600 "$pubkey" "$root/root/.ssh/authorized_keys"
chroot "$root" id "$user" >/dev/null 2>&1 || chroot "$root" useradd --create-home --shell /bin/bash --groups sudo "$user"
echo "$user:$password" | chroot "$root" chpasswd
# sshd answers faster without reverse lookups of 10.0.2.2; password
# logins on (cloud and Vagrant boxes turn them off).
printf 'UseDNS no\nPasswordAuthentication yes\n' > "$root/etc/ssh/sshd_config.d/vm-test.conf"

# auditd's package gives auditctl (the scenario deletes rules with it);
# its daemon stays off so that the sensor is the audit daemon.
chroot "$root" systemctl disable auditd
chroot "$root" systemctl mask auditd

# A small container image for the scenario, imported at first use from
# busybox-static (no registry is reachable).
install -d "$root/opt/vm-test"
cat > "$root/opt/vm-test/import-busybox.sh" <<'EOF'
#!/bin/sh
set -e
podman image exists localhost/busybox && exit 0
dir=$(mktemp -d)
mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
cp /bin/busybox "$dir/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/etc/passwd"
tar -C "$dir" -c . | podman import - localhost/busybox
rm -rf "$dir"
EOF
chmod 755 "$root/opt/vm-test/import-busybox.sh"

# The sensor's unit: the binary and config arrive over ssh per run;
# systemd restarts it after the scenario's kill attempt.
cat > "$root/etc/systemd/system/sensor.service" <<'EOF'
[Unit]
Description=sensor (vm-test)
After=network-online.target

[Service]
ExecStart=/usr/local/sbin/sensor run --config /etc/sensor/sensor.toml
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
EOF

if [ "$root" != / ]; then
    # Keep the image small: no apt lists or docs are needed at run time.
    rm -rf "$root/var/lib/apt/lists/"* "$root/usr/share/doc/"* "$root/usr/share/man/"*
fi
