"""Boot a QEMU guest with several NUMA nodes and run one command inside it.

How the guest is built (per run, in a temporary run directory):

* Kernel: the host's newest /boot/vmlinuz-* that has /lib/modules/<version>, booted
  as the uncompressed vmlinux inside it (extracted once into ~/.cache/numaprobe-vm).
* Initramfs: a "newc" cpio archive written by this module: static /bin/busybox,
  /dev/console, init.sh as /init, and the virtio-pci and 9p modules with their
  dependencies (from modules.dep, loaded in that order, decompressed if needed).
* File systems: init mounts the host's / read-only over 9p and chroots into it, with
  the guest's own proc, sysfs, cgroup2, devtmpfs and a tmpfs on /tmp. The current
  directory is shared writable at the same path; host directories the guest's /tmp
  would hide (a virtual environment under /tmp, say) are shared read-only.
* The run directory itself is shared too ("vmrun"): it holds `shares` (which 9p tags
  init mounts where), `command.sh` (environment, cd, exec the command) and, after the
  run, `rc` (the command's exit status) and `console.log` (kernel and init messages).
* Serial ports: ttyS0 is the console (console.log, and stderr with verbose=True);
  ttyS1 carries only the command's stdout and stderr, streamed live to `output`.
* The command runs in the current directory with PATH (the directory of this Python
  first, so `python` in the guest is the one running the harness), HOME (shared
  read-only if under /tmp), LANG, LC_ALL, VIRTUAL_ENV, PYENV_ROOT, PYENV_VERSION, all
  PYTHON* and NUMAPROBE_* variables (PYTHONUNBUFFERED=1 unless set),
  NUMAPROBE_VM_TOPOLOGY (the topology's name) and NUMAPROBE_VM_SPEC (its definition
  as JSON). Its stdin is /dev/null; stdout and stderr are one pipe, not a terminal.
  It runs as root: /sys/fs/cgroup is writable and CPUs can be taken offline.
* QEMU emulates the CPUs (TCG): KVM guests hang on this machine. Where KVM works,
  NUMAPROBE_VM_ACCEL=kvm uses it (untested here).
"""

import ctypes
import glob
import gzip
import json
import lzma
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from .topologies import TOPOLOGIES

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
INSTALL = "apt-get install qemu-system-x86 linux-image-amd64 busybox-static"
MODULES = ("virtio_pci", "9pnet_virtio", "9p")  # plus what modules.dep says they need
ACCEL = {"tcg": ["-accel", "tcg,thread=multi", "-cpu", "max"],
         "kvm": ["-accel", "kvm", "-cpu", "host"]}
PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYENV_ROOT", "PYENV_VERSION")
PASS_ENV_PREFIXES = ("PYTHON", "NUMAPROBE_")


class VMError(Exception):
    """The guest did not run the command to its end."""


class VMUnavailable(VMError):
    """QEMU, a kernel or busybox is missing on the host."""


class VMTimeout(VMError):
    """The run took longer than its timeout; QEMU was killed."""


def _kernel():
    """(path, version) of the newest /boot/vmlinuz-* with modules, or None."""
    found = [(tuple(map(int, re.findall(r"\d+", v))), p, v)
             for p in glob.glob("/boot/vmlinuz-*")
             for v in [p.removeprefix("/boot/vmlinuz-")]
             if os.path.isfile(f"/lib/modules/{v}/modules.dep")]
    return max(found)[1:] if found else None


def _boot_image(kernel, version):
    """An uncompressed vmlinux extracted from `kernel`, cached; else `kernel` itself.

    QEMU boots a vmlinux directly (PVH entry point), which spares the emulated
    guest decompressing an xz bzImage: about 3 s of each boot.
    """
    config = Path(f"/boot/config-{version}")
    if not config.is_file() or "CONFIG_PVH=y" not in config.read_text(errors="replace"):
        return kernel
    st = os.stat(kernel)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numaprobe-vm"
    vmlinux = cache / f"vmlinux-{version}-{st.st_size}-{int(st.st_mtime)}"
    if vmlinux.is_file():
        return str(vmlinux)
    data = Path(kernel).read_bytes()
    for magic, unpack in ((b"\xfd7zXZ\0", lambda d: lzma.LZMADecompressor().decompress(d)),
                          (b"\x1f\x8b\x08", lambda d: zlib.decompressobj(31).decompress(d))):
        at = data.find(magic)
        try:
            elf = unpack(data[at:]) if at >= 0 else b""
        except (lzma.LZMAError, zlib.error):
            continue
        if elf.startswith(b"\x7fELF"):
            try:
                cache.mkdir(parents=True, exist_ok=True)
                part = vmlinux.with_name(f"{vmlinux.name}.{os.getpid()}")
                part.write_bytes(elf)
                os.replace(part, vmlinux)
                return str(vmlinux)
            except OSError:
                return kernel
    return kernel


def available():
    """(True, description) when a guest can be booted here, else (False, reason)."""
    if shutil.which(QEMU) is None:
        return False, f"{QEMU} not found; install it with: {INSTALL}"
    kernel = _kernel()
    if kernel is None:
        return False, f"no kernel /boot/vmlinuz-* with /lib/modules; install one with: {INSTALL}"
    if not os.access(kernel[0], os.R_OK):
        return False, f"kernel {kernel[0]} is not readable by this user"
    try:
        with open(BUSYBOX, "rb") as f:
            static = b"ld-linux" not in f.read(4096)  # no program interpreter
    except OSError:
        static = False
    if not static:
        return False, f"no static busybox at {BUSYBOX}; install it with: {INSTALL}"
    try:
        _modules(kernel[1])
    except VMUnavailable as e:
        return False, str(e)
    return True, f"{QEMU} with kernel {kernel[1]}"


def _modules(version):
    """Paths of MODULES and their dependencies, dependencies first; built-ins skipped."""
    base = f"/lib/modules/{version}"
    name = lambda path: os.path.basename(path).split(".ko")[0].replace("-", "_")
    deps = {}
    for line in open(f"{base}/modules.dep"):
        path, _, needs = line.partition(":")
        deps[name(path)] = (os.path.join(base, path), [name(p) for p in needs.split()])
    builtin = {name(line.strip()) for line in open(f"{base}/modules.builtin")}
    order = []

    def visit(module):
        if module in order or module in builtin:
            return
        if module not in deps:
            raise VMUnavailable(f"kernel {version} has no module {module}")
        for dep in deps[module][1]:
            visit(dep)
        order.append(module)

    for module in MODULES:
        visit(module)
    return [deps[m][0] for m in order]


def _read_module(path):
    data = Path(path).read_bytes()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        raise VMUnavailable(f"{path}: zstd-compressed modules are not supported")
    return data


def _cpio(entries):
    """A newc cpio archive of (name, mode, data, (rdev major, minor)) entries."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", (0, 0))], 1):
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(name) + 1, 0)
        out += b"070701" + "".join(f"{x:08x}" for x in fields).encode() + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def build_initramfs(version):
    """The guest's initramfs as bytes (see the module docstring)."""
    dirs = ["bin", "dev", "proc", "sys", "vmrun", "newroot", "lib", "lib/modules"]
    entries = [(d, 0o40755, b"", (0, 0)) for d in dirs]
    entries += [("dev/console", 0o20600, b"", (5, 1)),
                ("bin/busybox", 0o100755, Path(BUSYBOX).read_bytes(), (0, 0)),
                ("init", 0o100755, (Path(__file__).parent / "init.sh").read_bytes(), (0, 0))]
    for i, path in enumerate(_modules(version)):
        name = os.path.basename(path).split(".ko")[0]
        entries.append((f"lib/modules/{i:02d}-{name}.ko", 0o100644, _read_module(path), (0, 0)))
    return _cpio(entries)


def _ranges(cpus):
    """[0, 1, 2, 5] -> ["0-2", "5"]."""
    runs = []
    for c in sorted(cpus):
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return [f"{a}-{b}" if a != b else f"{a}" for a, b in runs]


def qemu_command(topo, kernel, initrd, shares, append, output_fd):
    """The QEMU command line for topology `topo`; shares: [(tag, host path, read-only)]."""
    nodes, hmat = topo["nodes"], topo.get("hmat")
    assert [n["id"] for n in nodes] == list(range(len(nodes))), "node ids must be 0..N-1"
    ncpus = sum(len(n["cpus"]) for n in nodes)
    sockets = sum(1 for n in nodes if n["cpus"])
    smp = f"{ncpus},sockets={sockets},cores={ncpus // sockets},threads=1" \
        if ncpus % sockets == 0 else str(ncpus)
    cmd = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-machine", "pc,hmat=on" if hmat else "pc",
           *ACCEL[os.environ.get("NUMAPROBE_VM_ACCEL", "tcg")], "-smp", smp,
           "-m", f"{sum(n['memory_mib'] for n in nodes)}M"]
    for n in nodes:
        k = n["id"]
        node = f"node,nodeid={k},memdev=m{k}" + "".join(f",cpus={r}" for r in _ranges(n["cpus"]))
        if hmat:
            node += f",initiator={n.get('initiator', k)}"
        cmd += ["-object", f"memory-backend-ram,id=m{k},size={n['memory_mib']}M", "-numa", node]
    for i, row in enumerate(topo["distance"]):
        cmd += [a for j, d in enumerate(row) if i != j
                for a in ("-numa", f"dist,src={i},dst={j},val={d}")]
    for e in hmat or []:
        lb = f"hmat-lb,initiator={e['initiator']},target={e['target']},hierarchy=memory"
        cmd += ["-numa", f"{lb},data-type=access-latency,latency={e['latency_ns']}",
                "-numa", f"{lb},data-type=access-bandwidth,bandwidth={e['bandwidth_mbs']}M"]
    cmd += ["-kernel", kernel, "-initrd", initrd, "-append", append,
            "-serial", "stdio", "-chardev", f"file,id=out,path=/dev/fd/{output_fd}",
            "-serial", "chardev:out"]
    for tag, path, readonly in shares:
        path = path.replace(",", ",,")  # QEMU's escape for commas in option values
        cmd += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,"
                           f"multidevs=remap{',readonly=on' if readonly else ''}"]
    return cmd


def _shares(rundir):
    """[(9p tag, host path, read-only)]: /, the run directory, the current directory
    (writable), and the Python and HOME directories that the guest's /tmp would hide."""
    env = os.environ.get
    wanted = [sys.prefix, sys.base_prefix, env("VIRTUAL_ENV", ""), env("HOME", ""),
              *env("PATH", "").split(":"), *env("PYTHONPATH", "").split(":")]
    under = lambda path, top: path == top or path.startswith(top.rstrip("/") + "/")
    mounts = {os.getcwd(): False}
    for path in sorted({os.path.abspath(p) for p in wanted if p}, key=len):
        hidden = path.startswith("/tmp/") and os.path.isdir(path)
        if hidden and not any(under(path, m) for m in mounts):
            mounts[path] = True
    ordered = sorted(mounts.items(), key=lambda m: len(m[0]))  # parents first
    return [("root", "/", True), ("vmrun", str(rundir), False)] + \
        [(f"s{i}", path, ro) for i, (path, ro) in enumerate(ordered)]


def _command_script(name, topo, command):
    env = {k: v for k, v in os.environ.items()
           if (k in PASS_ENV or k.startswith(PASS_ENV_PREFIXES)) and k.isidentifier()}
    env.setdefault("PYTHONUNBUFFERED", "1")  # live output through the guest's pipe
    here, path = os.path.dirname(sys.executable), env.get("PATH", "/usr/bin:/bin")
    env["PATH"] = path if path.startswith(here + ":") else f"{here}:{path}"
    env["NUMAPROBE_VM_TOPOLOGY"] = name
    env["NUMAPROBE_VM_SPEC"] = json.dumps({"name": name, **topo})
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines += [f"cd {shlex.quote(os.getcwd())} || exit 125", "exec " + shlex.join(command)]
    return "\n".join(lines) + "\n"


def run(topology, command, *, timeout=600, verbose=False, output=None, rundir=None):
    """Boot a guest with `topology` (a name in TOPOLOGIES, or a definition like
    those) and run `command` (a list) in the current directory; return its exit status.

    Its output is written, as it comes, to `output` (a binary stream; default
    sys.stdout.buffer); with verbose=True the guest's console goes to stderr.
    Raises VMUnavailable, VMTimeout (QEMU killed after `timeout` seconds) or VMError
    (the guest did not finish the command; its console log is kept).
    The run's files go to `rundir`, which is kept, or to a temporary directory.
    """
    name, topo = (topology, TOPOLOGIES[topology]) if isinstance(topology, str) \
        else (topology.get("name", "custom"), topology)
    ok, why = available()
    if not ok:
        raise VMUnavailable(why)
    output = output or sys.stdout.buffer
    kernel, version = _kernel()
    keep = rundir is not None
    rundir = Path(rundir).resolve() if keep else Path(tempfile.mkdtemp(prefix="numaprobe-vm-"))
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "rc").unlink(missing_ok=True)
    try:
        initrd = rundir / "initramfs.cpio"
        initrd.write_bytes(build_initramfs(version))
        shares = _shares(rundir)
        (rundir / "shares").write_text("".join(
            f"{tag} {'ro' if ro else 'rw'} {path}\n" for tag, path, ro in shares[2:]))
        (rundir / "command.sh").write_text(_command_script(name, topo, command))
        append = "console=ttyS0 panic=-1" + ("" if verbose else " quiet")
        out_r, out_w = os.pipe()
        try:
            cmd = qemu_command(topo, _boot_image(kernel, version), str(initrd), shares,
                               append, out_w)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, pass_fds=[out_w],
                                    preexec_fn=_die_with_parent)
        finally:
            os.close(out_w)
        try:
            _pump(proc, out_r, output, rundir / "console.log", verbose, time.monotonic() + timeout)
        except VMTimeout:
            raise VMTimeout(f"timed out after {timeout:g} s") from None
        finally:
            os.close(out_r)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        try:
            return int((rundir / "rc").read_text())
        except (OSError, ValueError):
            keep = True
            initrd.unlink()
            lines = (rundir / "console.log").read_text(errors="replace").strip().splitlines()
            raise VMError(f"the guest did not finish the command (QEMU exit status "
                          f"{proc.returncode}, last console line "
                          f"{lines[-1].strip() if lines else ''!r}; log: {rundir}/console.log)"
                          ) from None
    finally:
        if not keep:
            shutil.rmtree(rundir, ignore_errors=True)


def _die_with_parent():
    """In the child: have the kernel kill QEMU if this process dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def _pump(proc, out_fd, output, log_path, verbose, deadline):
    """Copy the command's output to `output` and the console to the log until QEMU exits."""
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, output)
    with open(log_path, "wb") as log:
        sel.register(proc.stdout, selectors.EVENT_READ, log)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMTimeout()
            for key, _ in sel.select(left):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                key.data.write(data)
                key.data.flush()
                if key.data is log and verbose:
                    sys.stderr.buffer.write(data)
                    sys.stderr.buffer.flush()
