#!/usr/bin/env bash
# A QEMU VM with Debian's own kernel, for the lab's kernel IPsec (XFRM) data
# plane: this machine's kernel has XFRM but no ESP. The VM shares this
# machine's / read-only (9p) under a tmpfs overlay, so the installed charon
# and the freshly built library run unchanged inside; a second, writable 9p
# share brings the command's output and exit status back. TCG only: nested
# KVM hangs in the guest kernel's decompressor.
#
# usage: tests/lab/vm.sh prepare        make the kernel and initramfs (cached
#                                       under build/vm/); on failure print
#                                       the reason and exit 2
#        tests/lab/vm.sh run CMD [ARG...]
#                                       boot, run CMD in the current
#                                       directory as root, print its output
#                                       as it comes, exit with its status;
#                                       exit 2 with "vm: cannot boot: WHY"
#                                       when the VM never ran it
#
# VM_TIMEOUT (s, default 1800) bounds a run; VM_MEM (MiB, 4096), VM_CPUS (2).
# VM_KEEP=DIR keeps the share (cmd.log, console.log, what CMD wrote to
# /vm/keep) in DIR. Needs root for apt-get when a package is missing.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_DIR=${VM_DIR:-$REPO/build/vm}
TEMPLATE=$REPO/tests/lab/vm-init.template
# In order: each needs the ones before it.
KMODS="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"

vm_log() { printf 'vm: %s\n' "$*" >&2; }

# The kernel Debian installs today: the package linux-image-amd64 depends on.
kernel_version() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || return 1
	echo "$pkg"
}

need_tools() {
	local missing=() t
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
	[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx switch_root || missing+=(busybox-static)
	command -v depmod >/dev/null 2>&1 && [ -x /sbin/modprobe ] || missing+=(kmod)
	for t in cpio gzip; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
	[ ${#missing[@]} = 0 ] && return 0
	[ "$(id -u)" = 0 ] || { echo "missing ${missing[*]} (apt-get install needs root)"; return 1; }
	vm_log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${missing[@]}" >"$VM_DIR/apt.log" 2>&1 ||
		{ echo "apt-get install ${missing[*]} failed (see $VM_DIR/apt.log)"; return 1; }
}

# prepare: sets KV, KDIR; the kernel under $KDIR/k, the initramfs $KDIR/initrd.gz.
prepare() {
	mkdir -p "$VM_DIR" || { echo "cannot create $VM_DIR"; return 1; }
	need_tools || return 1
	KV=${VM_KERNEL:-$(kernel_version)} || { echo "apt-cache knows no linux-image-amd64 (apt-get update?)"; return 1; }
	KDIR=$VM_DIR/$KV
	if [ ! -f "$KDIR/k/.done" ]; then
		local tmp
		tmp=$(mktemp -d "$VM_DIR/kernel.XXXXXX") || return 1
		vm_log "downloading linux-image-$KV"
		if ! (cd "$tmp" && timeout 600 apt-get download "linux-image-$KV" >"$tmp/download.log" 2>&1); then
			echo "apt-get download linux-image-$KV failed: $(tail -n 1 "$tmp/download.log")"
			rm -rf "$tmp"
			return 1
		fi
		if ! dpkg-deb -x "$tmp"/linux-image-"$KV"_*.deb "$tmp/k" || ! depmod -b "$tmp/k" "$KV"; then
			echo "unpacking linux-image-$KV failed"
			rm -rf "$tmp"
			return 1
		fi
		rm -f "$tmp"/*.deb "$tmp/download.log"
		touch "$tmp/k/.done"
		rm -rf "$KDIR"
		mv "$tmp" "$KDIR"
	fi
	[ -f "$KDIR/k/boot/vmlinuz-$KV" ] || { echo "no kernel image in $KDIR"; return 1; }
	# The initramfs depends on the template and on busybox: remade when either changes.
	local key
	key=$(cat "$TEMPLATE" /bin/busybox | sha256sum | cut -c1-16)
	if [ ! -f "$KDIR/initrd-$key.gz" ]; then
		local ir m f
		ir=$(mktemp -d "$VM_DIR/initrd.XXXXXX") || return 1
		mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lower,upper,mods}
		cp /bin/busybox "$ir/bin/"
		for m in $KMODS; do
			f=$(modinfo -b "$KDIR/k" -k "$KV" -n "$m" 2>/dev/null)
			[ -n "$f" ] && [ -f "$f" ] || { echo "module $m not in linux-image-$KV"; rm -rf "$ir"; return 1; }
			case "$f" in
				*.ko) cp "$f" "$ir/mods/$m.ko" ;;
				*.ko.xz) xz -dc "$f" >"$ir/mods/$m.ko" ;;
				*.ko.zst) zstd -qdc "$f" >"$ir/mods/$m.ko" ;;
				*) echo "module $m: unknown format $f"; rm -rf "$ir"; return 1 ;;
			esac
		done
		sed -e "s#@MODULES@#$KDIR/k/lib/modules#g" -e "s#@KMODS@#$KMODS#g" "$TEMPLATE" >"$ir/init"
		chmod +x "$ir/init"
		(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip >"$KDIR/initrd.tmp") &&
			rm -f "$KDIR"/initrd-*.gz && mv "$KDIR/initrd.tmp" "$KDIR/initrd-$key.gz"
		rm -rf "$ir"
		[ -f "$KDIR/initrd-$key.gz" ] || { echo "building the initramfs failed"; return 1; }
	fi
	INITRD=$KDIR/initrd-$key.gz
}

QEMU_PID= TAIL_PID= SHARE=
cleanup() {
	[ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null
		sleep 1
		kill -9 "$QEMU_PID" 2>/dev/null
	fi
	if [ -n "$SHARE" ]; then
		if [ -n "${VM_KEEP:-}" ]; then
			mkdir -p "$VM_KEEP" && cp -r "$SHARE"/. "$VM_KEEP"/ && vm_log "kept the VM's share in $VM_KEEP"
		fi
		rm -rf "$SHARE"
	fi
}

run() {
	local why
	why=$(prepare) || { echo "vm: cannot boot: $why"; return 2; }
	prepare >/dev/null 2>&1 # sets KV, KDIR, INITRD in this shell (cached now)
	SHARE=$(mktemp -d "${TMPDIR:-/tmp}/mobike-rs-vm.XXXXXX") || return 2
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$SHARE/keep"
	{
		echo 'set -u'
		printf 'cd %q || exit 125\n' "$PWD"
		printf 'exec'
		printf ' %q' "$@"
		printf '\n'
	} >"$SHARE/run.sh"
	: >"$SHARE/cmd.log"
	local t0=$SECONDS
	nice -n 5 timeout --kill-after=10 "${VM_TIMEOUT:-1800}" qemu-system-x86_64 \
		-accel tcg -cpu max -m "${VM_MEM:-4096}" -smp "${VM_CPUS:-2}" -nographic -no-reboot \
		-kernel "$KDIR/k/boot/vmlinuz-$KV" -initrd "$INITRD" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init edd=off cryptomgr.notests=1" \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev local,id=vmout,path="$SHARE",security_model=none \
		-device virtio-9p-pci,fsdev=vmout,mount_tag=vmout \
		-nic none </dev/null >"$SHARE/console.log" 2>&1 &
	QEMU_PID=$!
	tail -n +1 -f --pid="$QEMU_PID" "$SHARE/cmd.log" &
	TAIL_PID=$!
	wait "$QEMU_PID"
	local qrc=$?
	QEMU_PID=
	wait "$TAIL_PID" 2>/dev/null
	TAIL_PID=
	if [ ! -f "$SHARE/started" ]; then
		echo "vm: cannot boot: the VM never ran the command (qemu exit $qrc): $(grep -a -E 'vm-init|Kernel panic|qemu' "$SHARE/console.log" | tail -n 3 | tr '\n' ' ')"
		return 2
	fi
	if [ ! -f "$SHARE/rc" ]; then
		vm_log "the command did not finish within ${VM_TIMEOUT:-1800} s (qemu exit $qrc), after $((SECONDS - t0)) s"
		return 124
	fi
	vm_log "VM run: $((SECONDS - t0)) s, linux $KV under TCG"
	return "$(cat "$SHARE/rc")"
}

case "${1:-}" in
	prepare)
		why=$(prepare) || { echo "$why"; exit 2; }
		;;
	run)
		shift
		[ $# -gt 0 ] || { echo "usage: $0 run CMD [ARG...]" >&2; exit 64; }
		run "$@"
		;;
	*)
		echo "usage: $0 prepare | run CMD [ARG...]" >&2
		exit 64
		;;
esac
