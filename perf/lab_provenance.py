"""Where a perf lab run's numbers came from: the machine (CPU model, cores, kernel, the CPU
vulnerability mitigations in force, the frequency governor), the build (compiler, its version,
build type and flags from the build tree's CMakeCache.txt, the source commit and whether its
tree was dirty, and when the binaries were built against when that commit was made: the
commit is the tree's HEAD now, not necessarily what the binaries were built from), the peers
and tools (liburing, OpenSSL, nginx, wrk, Python) and the command. Two runs can only be
compared when these agree, or when what differs is the point. Imported by perf/bench.py and
perf/lab_curves.py; it does no work at import time."""

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

VULNERABILITIES = Path("/sys/devices/system/cpu/vulnerabilities")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
# The lab's binaries whose build times are recorded (those that are there).
BINARIES = ("ringserve-http", "ringserve-echo", "http-load", "echo-load", "floor-uring",
            "floor-epoll")
STALE = "binaries older than HEAD's commit time (built from an earlier tree?)"
# Debian package whose version names each library or tool.
PACKAGES = {"liburing": "liburing-dev", "openssl": "libssl-dev", "nginx": "nginx", "wrk": "wrk"}


def output(cmd, cwd=None):
    """What cmd printed (stdout, else stderr), stripped; "" when it cannot run."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout.strip() or done.stderr.strip()) if done.returncode == 0 else ""


def cpu_model():
    """The CPU's model name from /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else platform.processor() or "unknown"


def vulnerabilities():
    """{name: the kernel's line} for every file under /sys/.../vulnerabilities."""
    if not VULNERABILITIES.is_dir():
        return {}
    return {f.name: f.read_text().strip() for f in sorted(VULNERABILITIES.iterdir())}


def cmake_cache(bin_dir):
    """The build's CMakeCache.txt entries as {name: value}, from <bin>/../CMakeCache.txt, or
    where <bin>/ringserve-http really lives (a folder of links to a build's binaries)."""
    server = Path(bin_dir) / "ringserve-http"
    found = [c for c in (Path(bin_dir).resolve().parent / "CMakeCache.txt",
                         server.resolve().parent.parent / "CMakeCache.txt") if c.exists()]
    if not found:
        return {}
    cache = found[0]
    entries = {}
    for line in cache.read_text().splitlines():
        m = re.match(r"^([A-Za-z_][\w-]*):[A-Z]+=(.*)$", line)
        if m:
            entries[m.group(1)] = m.group(2)
    return entries


def build(bin_dir):
    """Compiler, version, build type and flags of the build the binaries came from. The flags
    that apply are CMAKE_CXX_FLAGS and those of the build type (RelWithDebInfo's, say), given
    beside CMAKE_CXX_FLAGS_RELEASE."""
    cache = cmake_cache(bin_dir)
    if not cache:
        return {"cmake_cache": "not found beside the binaries"}
    compiler = cache.get("CMAKE_CXX_COMPILER", "")
    build_type = cache.get("CMAKE_BUILD_TYPE", "")
    info = {"cxx_compiler": compiler,
            "cxx_compiler_version": output([compiler, "--version"]).split("\n")[0]
            if compiler else "",
            "build_type": build_type,
            "cxx_flags": cache.get("CMAKE_CXX_FLAGS", ""),
            "cxx_flags_release": cache.get("CMAKE_CXX_FLAGS_RELEASE", "")}
    if build_type and build_type.upper() != "RELEASE":
        info[f"cxx_flags_{build_type.lower()}"] = cache.get(
            f"CMAKE_CXX_FLAGS_{build_type.upper()}", "")
    info["source_dir"] = cache.get("CMAKE_HOME_DIRECTORY", "")
    return info


def git_state(tree):
    """{commit, dirty, commit_time} of the git tree at path (commit_time: HEAD's committer
    date, Unix seconds), or {} outside one."""
    commit = output(["git", "rev-parse", "HEAD"], cwd=tree)
    if not commit:
        return {}
    dirty = output(["git", "status", "--porcelain"], cwd=tree)  # ignored files do not count
    when = output(["git", "log", "-1", "--format=%ct", "HEAD"], cwd=tree)
    return {"commit": commit, "dirty": bool(dirty),
            "commit_time": int(when) if when.isdigit() else None}


def iso(seconds):
    """Unix seconds as the report writes a time."""
    return datetime.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def binaries(bin_dir):
    """{name: modification time (Unix seconds)} of the lab's binaries in bin_dir (through
    links: the file itself)."""
    out = {}
    for name in BINARIES:
        try:
            out[name] = int(Path(bin_dir, name).stat().st_mtime)
        except OSError:
            pass
    return out


def staleness(built, source):
    """STALE when even the newest of the binaries is older than the source tree's HEAD
    commit (then the commit recorded is likely not what they were built from), else None."""
    when = (source or {}).get("commit_time")
    if not built or when is None or max(built.values()) >= when:
        return None
    return STALE


def package_version(package):
    """The installed Debian package's version, or "not installed"."""
    return output(["dpkg-query", "-W", "-f", "${Version}", package]) or "not installed"


def collect(bin_dir, lab_root, argv=None):
    """The provenance of a run with the binaries in bin_dir and the lab from lab_root."""
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in (argv or sys.argv)),
            "host": platform.node(), "cpu_model": cpu_model(), "cores": os.cpu_count(),
            "kernel": f"{platform.system()} {platform.release()} {platform.version()}",
            "vulnerabilities": vulnerabilities(),
            "cpufreq_governor": GOVERNOR.read_text().strip() if GOVERNOR.exists()
            else "not exposed",
            "build": build(bin_dir), "bin": str(Path(bin_dir).resolve()),
            "python": sys.version.split()[0]}
    source = info["build"].get("source_dir")
    info["source_git"] = git_state(source) if source else {}
    info["binaries_mtime"] = binaries(bin_dir)
    info["binaries_warning"] = staleness(info["binaries_mtime"], info["source_git"])
    info["lab_git"] = git_state(lab_root)
    for name, package in PACKAGES.items():
        info[f"{name}_version"] = package_version(package)
    info["nginx_v"] = output(["nginx", "-v"])  # nginx says its version on stderr
    return info


def git_text(state):
    """A commit as the report names it: short, clean or dirty."""
    if not state:
        return "not a git tree"
    return state["commit"][:12] + (" (dirty: uncommitted changes)" if state["dirty"] else
                                   " (clean)")


def binaries_line(p):
    """When the binaries were built, against their source commit's time, and the warning."""
    built = p.get("binaries_mtime")
    if not built:
        return "- Binaries' build times: not recorded"
    when = (p.get("source_git") or {}).get("commit_time")
    text = (f"- Binaries built (modification times) {iso(min(built.values()))} to "
            f"{iso(max(built.values()))}; the source commit made "
            f"{iso(when) if when is not None else 'at an unknown time'}")
    warning = p.get("binaries_warning")
    return text + (f". **Warning: {warning}**" if warning else "")


def provenance_lines(p):
    """The report's provenance, one fact a line."""
    if not p:
        return ["Not recorded (a report from before provenance)."]
    b = p.get("build", {})
    flags = [f"{k} `{v}`" for k, v in b.items() if k.startswith("cxx_flags")]
    lines = [f"- Command: `{p.get('command')}` on {p.get('date')}",
             f"- CPU: {p.get('cpu_model')}, {p.get('cores')} cores; frequency governor: "
             f"{p.get('cpufreq_governor')}",
             f"- Kernel: {p.get('kernel')}",
             f"- Build: {b.get('cxx_compiler', '?')} ({b.get('cxx_compiler_version', '?')}), "
             f"CMAKE_BUILD_TYPE {b.get('build_type', '?')}; " + ", ".join(flags),
             f"- Source of the binaries ({p.get('bin')}): {b.get('source_dir', '?')} at "
             f"{git_text(p.get('source_git'))}; the lab's own tree at "
             f"{git_text(p.get('lab_git'))}",
             binaries_line(p),
             f"- liburing {p.get('liburing_version')}, OpenSSL {p.get('openssl_version')}, "
             f"nginx {p.get('nginx_version')} (`{p.get('nginx_v')}`), wrk {p.get('wrk_version')}"
             f", Python {p.get('python')}",
             "- CPU vulnerabilities (the kernel's mitigations in force):"]
    lines += [f"  - {name}: {state}" for name, state in p.get("vulnerabilities", {}).items()]
    return lines
