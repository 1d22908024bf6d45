#!/bin/sh
# acpid runs this on the ACPI power button (QMP system_powerdown).
sync
poweroff -f
