"""Malicious sdists: an in-tree build backend that attacks the sandbox it is built in.

The backend is the demo project's (see tests/sdists.py), but its ``build_wheel`` runs one probe
chosen by the test and then fails on purpose, so that every check ends ``failed`` with the
probe's report in the build log. A probe prints ``PROBE <name>: HELD`` when the sandbox stopped
the attack and ``PROBE <name>: BROKEN <what>`` when the attack got through; the test reads the
log. Values the probe needs from the host (a canary path, the host's name) come in a JSON file
inside the sdist, so that nothing from the host reaches the build except the sdist itself.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from sdists import PYPROJECT, SDE

NAME = "demo"
VERSION = "1.0"
FAILED_ON_PURPOSE = "the probe ran; this build fails on purpose"

BACKEND = r'''
"""A hostile in-tree build backend: it attacks its sandbox, reports, and fails."""
import json, os, socket, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "probe.json")) as _f:
    PROBE = json.load(_f)


def say(line):
    print(line, flush=True)


def attempt(what, action):
    """Run ``action``; True when it succeeded (the attack got through)."""
    try:
        action()
    except BaseException as e:  # noqa: BLE001
        say(f"  {what}: refused ({type(e).__name__}: {e})")
        return False
    say(f"  {what}: SUCCEEDED")
    return True


def report(name, broken):
    say(f"PROBE {name}: " + ("BROKEN " + ", ".join(broken) if broken else "HELD"))


def probe_network():
    broken = []
    say("interfaces: " + " ".join(sorted(os.listdir("/sys/class/net"))))
    for host, port in (("1.1.1.1", 53), ("8.8.8.8", 443), ("pypi.org", 443), ("172.17.0.1", 2375)):
        if attempt(f"connect {host}:{port}",
                   lambda: socket.create_connection((host, port), timeout=5).close()):
            broken.append(f"{host}:{port}")
    if attempt("resolve pypi.org", lambda: socket.getaddrinfo("pypi.org", 443)):
        broken.append("dns")
    interfaces = set(os.listdir("/sys/class/net")) - {"lo"}
    if interfaces:
        broken.append("interfaces " + ",".join(sorted(interfaces)))
    report("network", broken)


def probe_capabilities():
    broken = []
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        value = int(status[key].strip(), 16)
        say(f"  {key} = {value:#x}")
        if value:
            broken.append(f"{key}={value:#x}")
    if status["NoNewPrivs"].strip() != "1":
        broken.append("NoNewPrivs is not set")
    scratch = os.path.join(os.environ.get("TMPDIR", "/tmp"), "owned")
    open(scratch, "w").close()
    if attempt("chown a file to root", lambda: os.chown(scratch, 0, 0)):
        broken.append("chown")
    device = lambda: os.mknod(scratch + ".dev", 0o600 | 0o060000, os.makedev(8, 0))
    if attempt("mknod a block device", device):
        broken.append("mknod")
    report("capabilities", broken)


def probe_user():
    broken = []
    say(f"  uid={os.getuid()} euid={os.geteuid()} gid={os.getgid()} groups={os.getgroups()}")
    if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()):
        broken.append("runs as root")
    if attempt("setuid(0)", lambda: os.setuid(0)):
        broken.append("setuid")
    if attempt("read /etc/shadow", lambda: open("/etc/shadow").read()):
        broken.append("shadow")
    report("user", broken)


def probe_readonly():
    broken = []
    # The build runs from a copy on the sandbox's scratch space; the sdist is mounted here.
    source = "/inputs/source"
    targets = {
        "a new file in the source mount": os.path.join(source, "pwned"),
        "the sdist's own backend": os.path.join(source, "backend.py"),
        "a new file in /deps": "/deps/pwned.whl",
        "the build script": "/inputs/build.sh",
        "the uv binary": "/opt/rebuild/uv",
        "the image's /usr": "/usr/lib/pwned",
        "the image's /etc": "/etc/pwned",
    }
    say(f"  building from {HERE}; the sdist is at {source}: {sorted(os.listdir(source))}")
    for what, path in targets.items():
        if attempt(f"write {what} ({path})", lambda p=path: open(p, "a").close()):
            broken.append(path)
    for path in ("/deps", "/inputs/source"):
        if os.path.isdir(path) and attempt(f"remove {path}", lambda p=path: os.rmdir(p)):
            broken.append(f"rmdir {path}")
    report("read-only", broken)


def probe_host_paths():
    broken = []
    for path in [PROBE["canary"], "/var/run/docker.sock", "/run/docker.sock",
                 "/root/.docker", "/root/.ssh", "/root/.cache/rebuild"]:
        exists = os.path.lexists(path)
        say(f"  {path}: {'PRESENT' if exists else 'absent'}")
        if exists:
            broken.append(path)
    if socket.gethostname() == PROBE["host_name"]:
        broken.append("the host's name")
    secret = [k for k in os.environ if k.startswith("REBUILD_HOSTILE_SECRET")]
    if secret:
        broken.append("the host's environment: " + ",".join(secret))
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mounts.append(fields[4])
    say("MOUNTS " + json.dumps(sorted(mounts)))
    report("host-paths", broken)


def probe_fork_bomb():
    children = 0
    while True:
        try:
            pid = os.fork()
        except OSError as e:
            say(f"  fork refused after {children} children: {e}")
            break
        if pid == 0:
            # Each child lets go of the build's output (so the frontend is not kept waiting)
            # and stays alive, holding its pid.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            while True:
                time.sleep(60)
        children += 1
        if children > 100_000:
            break
    say(f"FORKED {children}")
    report("pids", [] if children < PROBE["pids"] else [f"{children} processes"])


def probe_memory_bomb():
    held = []
    chunk = 16 * 1024 * 1024
    while True:
        held.append(b"\x01" * chunk)  # written, not only reserved
        mib = len(held) * 16
        if mib % 64 == 0:
            say(f"ALLOCATED {mib} MiB")
        if mib > 64 * 1024:
            report("memory", [f"{mib} MiB allocated"])
            return


def probe_deep_output():
    # A tree deeper than the host's rmtree can recurse, written into the one writable mount.
    fd = os.open(PROBE["out"], os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(PROBE["depth"]):
        os.mkdir("deep", dir_fd=fd)
        child = os.open("deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    say(f"wrote {PROBE['depth']} levels")
    report("deep_output", [])


def probe_endless():
    say("spinning")
    while True:
        pass


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    globals()["probe_" + PROBE["probe"]]()
    raise SystemExit("FAILED_ON_PURPOSE")
'''.replace("FAILED_ON_PURPOSE", FAILED_ON_PURPOSE)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"{NAME}-{VERSION}/{name}")
    info.size = len(data)
    info.mtime = SDE
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def make_hostile_sdist(path: Path, probe: str, **values: object) -> Path:
    """An sdist of demo 1.0 whose backend runs ``probe`` (with ``values``) and then fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"probe": probe, **values}).encode()
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "PKG-INFO", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        _add(tar, "pyproject.toml", PYPROJECT.encode())
        _add(tar, "backend.py", BACKEND.encode())
        _add(tar, "probe.json", settings)
        _add(tar, "demo/__init__.py", b"ANSWER = 42\n")
    return path
