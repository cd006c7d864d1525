"""Test hosts in Linux network namespaces, joined by one bridge.

``with lan(3) as net:`` creates a bridge and three namespaces, each joined to
the bridge by a veth pair and given ``10.<n>.0.<i>/24``; loopback is up, there
is no default route and the bridge has no address, so the hosts reach only
each other. Everything is deleted on exit, also after a failure.

Names carry a per-session tag (``chb-<tag>-<n>`` bridges, ``chn-<tag>-<n>-<i>``
namespaces, ``chp-<tag>-<n>-<i>`` bridge-side veths); :func:`sweep_leftovers`
deletes those of sessions that are no longer running (a registry file under
``/run/chhaya-netns`` records the PID of each session's tag).

Link impairments, using what the kernel offers:

- :meth:`Lan.impair`: ``tc netem`` loss/delay if the kernel has netem; else
  loss only, by an HTB qdisc whose filter (classic BPF, ``ld rand``) sends the
  chosen share of packets to a class that drops everything (``pfifo limit 0``).
- :meth:`Lan.block_inbound`: no one can open a TCP connection to a host:
  with ``iptables`` or ``nft`` new inbound connections are dropped; without
  them a policy-routing rule (``ip rule ... ipproto tcp sport PORT prohibit``)
  stops the host answering a SYN on its listening port, while its own
  outgoing connections (from other ports) work.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from node.demo_network import LocalNetwork
from node.procs import NodeProcess

__all__ = [
    "Host",
    "Lan",
    "NetnsError",
    "lan",
    "netns_unavailable",
    "require_netns",
    "session_tag",
    "start_infra",
    "start_user",
    "sweep_leftovers",
    "tcp_connects",
    "unregister",
]

REGISTRY = Path("/run/chhaya-netns")
_TAG = f"{os.getpid() % 10000}"
_counter = itertools.count(1)
#: Bound on one ip/tc command.
CMD_TIMEOUT_S = 10.0


class _Runner(Protocol):  # _run, or Host.run
    def __call__(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...


class NetnsError(RuntimeError):
    """An ip/tc command failed."""


def session_tag() -> str:
    return _TAG


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CMD_TIMEOUT_S, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def netns_unavailable() -> str | None:
    """Why namespaces and bridges cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "network-namespace tests need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "network-namespace tests need `ip` and `tc` (iproute2)"
    probe = f"chn-{_TAG}-probe"
    try:
        _run("ip", "netns", "add", probe)
    except (NetnsError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a network namespace: {exc}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return None


def require_netns() -> None:
    """pytest.skip (with the reason) unless namespaces and bridges can be made here."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(reason)


@dataclass
class Host:
    """One namespace on the LAN."""

    name: str
    ns: str
    ip: str
    dev: str  # the veth inside the namespace
    peer: str  # its other end, on the bridge

    @property
    def prefix(self) -> tuple[str, ...]:
        """Put before a command to run it in this host (``ip netns exec`` execs it)."""
        return ("ip", "netns", "exec", self.ns)

    def listen(self, port: int = 0) -> str:
        return f"/ip4/{self.ip}/tcp/{port}"

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(*self.prefix, *cmd, check=check)


@dataclass
class Lan:
    """A bridge and namespaces on it; see :func:`lan`."""

    bridge: str
    subnet: int
    hosts: dict[str, Host] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def add_host(self, name: str) -> Host:
        i = len(self.hosts) + 1
        n = self.bridge.rsplit("-", 1)[1]
        ns, dev, peer = f"chn-{_TAG}-{n}-{i}", f"chv-{_TAG}-{n}-{i}", f"chp-{_TAG}-{n}-{i}"
        host = Host(name, ns, f"10.{self.subnet}.0.{i}", dev, peer)
        self.hosts[name] = host  # registered first: close() deletes what exists
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", dev, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "master", self.bridge)
        _run("ip", "link", "set", peer, "up")
        _run("ip", "link", "set", dev, "netns", ns)
        host.run("ip", "addr", "add", f"{host.ip}/24", "dev", dev)
        host.run("ip", "link", "set", dev, "up")
        host.run("ip", "link", "set", "lo", "up")
        return host

    # -- impairments

    def impair(self, name: str, loss_pct: float, delay_ms: int = 0) -> str:
        """Loss (and delay, if netem exists) on both directions of ``name``'s link.

        Returns a description of what was applied (also kept in ``notes``).
        """
        host = self.hosts[name]
        spec = ["loss", f"{loss_pct:g}%"] + (["delay", f"{delay_ms}ms"] if delay_ms else [])
        out = _run("tc", "qdisc", "add", "dev", host.peer, "root", "netem", *spec, check=False)
        if out.returncode == 0:
            host.run("tc", "qdisc", "add", "dev", host.dev, "root", "netem", *spec)
            applied = f"netem {' '.join(spec)} on {name}'s link (both directions)"
        else:
            _random_drop(_run, host.peer, loss_pct)  # bridge side: towards the host
            _random_drop(host.run, host.dev, loss_pct)  # the host's own egress
            applied = (
                f"loss {loss_pct:g}% on {name}'s link (both directions) by htb + cBPF random "
                f"classifier; netem is not available ({out.stderr.strip()})"
                + (f", so no {delay_ms} ms delay" if delay_ms else "")
            )
        self.notes.append(applied)
        return applied

    def dropped(self, name: str) -> int:
        """Packets dropped so far by the impairment on ``name``'s link (both directions)."""
        host = self.hosts[name]
        total = 0
        show = ("tc", "-s", "qdisc", "show", "dev")
        for out in (_run(*show, host.peer, check=False), host.run(*show, host.dev, check=False)):
            counting = False  # the dropping qdisc's own lines (htb repeats its children's)
            for line in out.stdout.splitlines():
                if line.startswith("qdisc"):
                    counting = line.startswith(("qdisc netem", "qdisc pfifo 20:"))
                elif counting and "(dropped" in line:
                    total += int(line.split("(dropped", 1)[1].split(",", 1)[0])
        return total

    def clear_impairment(self, name: str) -> None:
        host = self.hosts[name]
        _run("tc", "qdisc", "del", "dev", host.peer, "root", check=False)
        host.run("tc", "qdisc", "del", "dev", host.dev, "root", check=False)

    def block_inbound(self, name: str, port: int) -> str:
        """No one can open a TCP connection to ``name`` (``port``: its listening port).

        The host's own outgoing connections still work.
        """
        host = self.hosts[name]
        if shutil.which("iptables"):
            host.run("iptables", "-A", "INPUT", "-p", "tcp", "--syn", "-j", "DROP")
            applied = f"iptables: inbound TCP SYN dropped on {name}"
        elif shutil.which("nft"):
            host.run("nft", "add table inet chhaya")
            host.run("nft", "add chain inet chhaya input { type filter hook input priority 0 ; }")
            host.run("nft", "add rule inet chhaya input tcp flags & (syn|ack) == syn drop")
            applied = f"nft: inbound TCP SYN dropped on {name}"
        else:
            # The SYN-ACK of a listening socket is routed with the listening port as
            # its source port; prohibit that route and no handshake completes.
            host.run("ip", "rule", "add", "ipproto", "tcp", "sport", str(port), "prohibit")
            applied = (
                f"no iptables/nft here: `ip rule add ipproto tcp sport {port} prohibit` "
                f"in {name} (its SYN-ACKs are never sent)"
            )
        self.notes.append(applied)
        return applied

    # -- teardown

    def close(self) -> None:
        for host in self.hosts.values():
            _run("ip", "netns", "del", host.ns, check=False)  # takes its veth pair along
            _run("ip", "link", "del", host.peer, check=False)
        _run("ip", "link", "del", self.bridge, check=False)


def _random_drop(run: _Runner, dev: str, loss_pct: float) -> None:
    """Drop ``loss_pct`` % of the packets leaving ``dev``, chosen at random.

    HTB, default class 1:10 (passes); a classic-BPF filter puts a packet in
    1:20 (``pfifo limit 0``: drops all) when a random u32 falls under the share.
    """
    threshold = int(loss_pct / 100 * 2**32)
    rand = 0xFFFFF000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM
    # ld rand; jge threshold -> pass; ret -1 (the filter's class, 1:20); pass: ret 0 (no match)
    prog = f"4,32 0 0 {rand},53 1 0 {threshold},6 0 0 {0xFFFFFFFF},6 0 0 0"
    run("tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
    for cls in ("1:10", "1:20"):
        run("tc", "class", "add", "dev", dev, "parent", "1:", "classid", cls, "htb",
            "rate", "10gbit")  # fmt: skip
    run("tc", "qdisc", "add", "dev", dev, "parent", "1:20", "handle", "20:", "pfifo", "limit", "0")
    run("tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "all", "prio", "1",
        "bpf", "bytecode", prog, "classid", "1:20")  # fmt: skip


@contextlib.contextmanager
def lan(names: Sequence[str]) -> Iterator[Lan]:
    """A bridge with one namespace per name; all deleted on exit (also after errors).

    Skips the test (with the reason) where namespaces cannot be made.
    """
    require_netns()
    _register()
    n = next(_counter)
    bridge = f"chb-{_TAG}-{n}"
    net = Lan(bridge, 20 + (os.getpid() * 7 + n) % 230)
    try:
        _run("ip", "link", "add", bridge, "type", "bridge")
        _run("ip", "link", "set", bridge, "up")
        for name in names:
            net.add_host(name)
        yield net
    finally:
        net.close()


# -- leftovers -------------------------------------------------------------------------


def _register() -> None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / _TAG).write_text(str(os.getpid()))


def _alive(tag: str) -> bool:
    """Whether the session that owns ``tag`` is still running (not us)."""
    try:
        pid = int((REGISTRY / tag).read_text())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(name: str) -> str | None:
    """The tag of a name we make, or None."""
    parts = name.split("-")
    if len(parts) >= 3 and parts[0] in ("chb", "chn", "chp", "chv") and parts[1].isdigit():
        return parts[1]
    return None


def sweep_leftovers() -> list[str]:
    """Delete namespaces and links of ours whose session is gone (or is this one)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return []
    removed: list[str] = []
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            tag = _ours(ns)
            if tag is not None and not _alive(tag):
                _run("ip", "netns", "del", ns, check=False)
                removed.append(ns)
        for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
            fields = line.split(":")
            if len(fields) < 2:
                continue
            dev = fields[1].strip().split("@")[0]
            tag = _ours(dev)
            if tag is not None and not _alive(tag):
                _run("ip", "link", "del", dev, check=False)
                removed.append(dev)
    for entry in REGISTRY.glob("*") if REGISTRY.is_dir() else ():
        if entry.name != _TAG and not _alive(entry.name):
            entry.unlink(missing_ok=True)  # a session that died without unregistering
    return removed


def unregister() -> None:
    """Forget this session's tag (after its own names were swept)."""
    with contextlib.suppress(OSError):
        if (REGISTRY / _TAG).read_text() == str(os.getpid()):
            (REGISTRY / _TAG).unlink()
        REGISTRY.rmdir()  # only if no other session is registered


# -- Chhaya processes in namespaces ------------------------------------------------------


def start_infra(net: LocalNetwork, host: Host) -> None:
    """The witnesses and the directory of ``net``, all inside ``host``."""
    net.start_witnesses(listen=host.listen(), prefix=host.prefix)
    net.start_directory(listen=host.listen(), prefix=host.prefix)


def start_user(
    net: LocalNetwork, handle: str, host: Host, extra: Sequence[str] = (), port: int = 0
) -> NodeProcess:
    """The node of ``handle`` inside ``host``, listening on its LAN address."""
    return net.start_user(handle, extra, listen=host.listen(port), prefix=host.prefix)


def tcp_connects(src: Host, dst: Host, port: int, timeout_s: float = 3.0) -> bool:
    """Whether ``src`` can open a TCP connection to ``dst``:``port`` (within the bound)."""
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({dst.ip!r}, {port}), timeout={timeout_s}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    return src.run(sys.executable, "-c", code, check=False).returncode == 0
