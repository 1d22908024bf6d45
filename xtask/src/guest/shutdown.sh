#!/bin/sh
# shutdown(8) for qemu-ga, which runs `shutdown -h -P|-H|-r +0 "message"`:
# busybox has none. The specific flag wins over -h, which all of them carry.
for arg in "$@"; do
    case "$arg" in
    -r) sync; exec reboot -f ;;
    -H) sync; exec halt -f ;;
    esac
done
sync
exec poweroff -f
