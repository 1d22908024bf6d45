#!/bin/sh
# /init of the qemukit test guest: busybox sh as PID 1.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PS1='# '

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp

# Modules in dependency order; the list is written by `cargo xtask guest`.
for module in $(cat /etc/qemukit/modules); do
    insmod "/lib/modules/$module.ko" || echo "qemukit-init: insmod $module failed"
done

hostname qemukit
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    # QEMU user networking; it has no DHCP client here, so the static lease.
    ip addr add 10.0.2.15/24 dev eth0
    ip link set eth0 up
    ip route add default via 10.0.2.2
fi

# acpid opens the event nodes that exist when it starts, and devtmpfs makes
# them asynchronously. The ACPI power button is its own input device (event0
# is usually the keyboard): wait (bounded) for the button's node itself.
button=
tries=0
while [ -z "$button" ] && [ $tries -lt 200 ]; do
    for dir in /sys/class/input/input*; do
        [ "$(cat "$dir/name" 2>/dev/null)" = "Power Button" ] || continue
        for node in "$dir"/event*; do
            [ -e "/dev/input/${node##*/}" ] && button=/dev/input/${node##*/}
        done
    done
    [ -n "$button" ] || sleep 0.05
    tries=$((tries + 1))
done
[ -n "$button" ] || echo "qemukit-init: no ACPI power button; system_powerdown will not work"
acpid -f -c /etc/acpi -l /run/acpid.log </dev/null >/dev/null 2>&1 &
acpid_pid=$!
# "Ready" promises that system_powerdown works: wait (bounded) until acpid
# holds the button open, or an early power button press is lost.
tries=0
while [ -n "$button" ] && [ $tries -lt 200 ] &&
    ! ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q -- "-> $button\$"; do
    sleep 0.05
    tries=$((tries + 1))
done

if [ -x /usr/sbin/qemu-ga ]; then
    port=
    tries=0
    while [ -z "$port" ] && [ $tries -lt 50 ]; do
        for dir in /sys/class/virtio-ports/*; do
            if [ "$(cat "$dir/name" 2>/dev/null)" = org.qemu.guest_agent.0 ]; then
                port=/dev/${dir##*/}
            fi
        done
        [ -n "$port" ] || sleep 0.1
        tries=$((tries + 1))
    done
    if [ -n "$port" ]; then
        qemu-ga -m virtio-serial -p "$port" -t /run </dev/null >/run/qemu-ga.log 2>&1 &
    else
        echo "qemukit-init: no virtio port org.qemu.guest_agent.0, qemu-ga not started"
    fi
fi

cd /root
echo qemukit-guest-ready
setsid cttyhack sh
sync
poweroff -f
