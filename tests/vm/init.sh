#!/bin/busybox sh
# /init of the test guest (PID 1, busybox sh inside the initramfs; see harness.py).
# Loads the 9p modules, mounts the host's / read-only plus the shares listed in
# /vmrun/shares, runs /vmrun/command.sh chrooted with its output on ttyS1, writes its
# exit status to /vmrun/rc and powers off. Messages from here go to the console.
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "numaprobe-vm init: $*"; sync; poweroff -f; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/modules/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" || fail "insmod $m failed"
done
ip link set lo up

o=trans=virtio,version=9p2000.L,msize=512000
R=/newroot
mount -t 9p -o "$o" vmrun /vmrun || fail "cannot mount the run directory"
mount -t 9p -o "ro,$o,cache=loose" root $R || fail "cannot mount the host's /"
mount -t proc proc $R/proc &&
mount -t sysfs sysfs $R/sys &&
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup &&
mount -t devtmpfs devtmpfs $R/dev &&
mkdir -p $R/dev/pts $R/dev/shm &&
mount -t devpts devpts $R/dev/pts &&
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm &&
mount -t tmpfs -o mode=1777 tmpfs $R/tmp || fail "cannot mount proc, sys, dev or tmp"
# Each line: 9p tag, ro|rw, guest path (parents before children).
while read -r tag mode path; do
    mkdir -p "$R$path" && mount -t 9p -o "$mode,$o,cache=loose" "$tag" "$R$path" ||
        fail "cannot mount $path"
done < /vmrun/shares

stty -F /dev/ttyS1 raw -echo
{ env -i chroot $R /bin/sh -c "$(cat /vmrun/command.sh)"; echo $? > /vmrun/rc; } \
    < /dev/null 2>&1 | cat > /dev/ttyS1
sync
poweroff -f
