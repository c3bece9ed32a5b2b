#!/usr/bin/env python3
"""Meshward kernel suite: traffic generator, receiver, capture and analysis.

Runs inside the guest. Three roles:

  agent    one per node namespace (forked by `run`, which joins it to the node's
           namespace; `ip netns exec NODE traffic.py agent` also works): sends a
           sequence-numbered UDP stream on every channel leaving the node, keeps a
           TCP connection per pair the node initiates, receives and counts
           everything arriving, reads the namespace's xfrm_stat before and after.
  run      the orchestrator, in the guest's root namespace: starts one agent per
           node and a tcpdump on the switch namespace, writes DIR/ready once
           everything is up, and on SIGTERM (or DIR/stop appearing) stops the
           senders, lets in-flight packets land, stops everything, analyses and
           writes DIR/traffic.json.
  analyze  re-runs the analysis of a finished DIR (for debugging).

The topology file (JSON) is written by guest.py:
  {"switch": "ks-switch", "udp_port": 5001, "tcp_port": 5002,
   "nodes": {"web-1": {"addr4": "198.18.1.10", "addr6": null, "port": "p-web-1"}, ...},
   "channels": [{"id": 0, "name": "web-1>app-1/4", "src": "web-1", "dst": "app-1",
                 "family": 4, "src_addr": ..., "dst_addr": ...}, ...],
   "pairs": [{"name": "web-1~app-1/4", "a": "web-1", "b": "app-1", "family": 4}, ...]}

Enforcement marks (DIR/marks, appended by scenarios through ks_mark):
  <unix time> enforce|relax <channel name or "all">
A plaintext packet of a channel captured while that channel is enforced counts as
plaintext-after-enforcement. TCP to or from "control_tcp_port" (the agents' port, 7443) is the
control connection, which is exempt from IPsec by design (its own TLS protects it): it is
counted per channel as "control", never as plaintext.

Standard library only.
"""

import argparse
import array
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

MAGIC = b"MWKS"
UDP_FORMAT = "!4sHQd"  # magic, channel id, sequence, send time
UDP_SIZE = struct.calcsize(UDP_FORMAT)
UDP_PAYLOAD = 96  # bytes on the wire per datagram (header padded)
TCP_FORMAT = "!Qd"  # sequence, send time
TCP_SIZE = struct.calcsize(TCP_FORMAT)
TCP_RATE = 20  # messages per second per direction on each TCP connection
SO_RCVBUFFORCE = 33  # beyond net.core.rmem_max (root only): a starved guest must not drop at the socket


def now():
    return time.time()


def read_counters():
    """The namespace's xfrm_stat plus the UDP receive-buffer drops (which would
    otherwise be mistaken for loss on the wire)."""
    counters = {}
    try:
        with open("/proc/net/xfrm_stat") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    counters[parts[0]] = int(parts[1])
    except OSError:
        pass
    try:
        with open("/proc/net/snmp") as f:
            lines = f.read().splitlines()
        for i in range(0, len(lines) - 1, 2):
            head, vals = lines[i].split(), lines[i + 1].split()
            if head[0] == "Udp:":
                row = dict(zip(head[1:], vals[1:]))
                counters["UdpRcvbufErrors"] = int(row.get("RcvbufErrors", 0))
                counters["UdpInErrors"] = int(row.get("InErrors", 0))
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/net/snmp6") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] in ("Udp6RcvbufErrors", "Udp6InErrors"):
                    counters[parts[0]] = int(parts[1])
    except OSError:
        pass
    return counters


# --------------------------------------------------------------------------- agent


class Agent:
    def __init__(self, node, topo, out_dir, rate):
        self.node = node
        self.topo = topo
        self.out_dir = out_dir
        self.rate = rate
        self.me = topo["nodes"][node]
        self.sending = True
        self.running = True
        self.lock = threading.Lock()
        self.outgoing = [c for c in topo["channels"] if c["src"] == node]
        self.incoming = {c["id"]: c for c in topo["channels"] if c["dst"] == node}
        self.sent = {c["name"]: 0 for c in self.outgoing}
        self.sent_last = {c["name"]: None for c in self.outgoing}
        self.send_errors = {c["name"]: {} for c in self.outgoing}
        self.send_start = None
        # receiver state per incoming channel id
        self.seen = {cid: bytearray() for cid in self.incoming}
        self.stamp = {cid: array.array("d") for cid in self.incoming}  # send time of each received seq
        self.recv = {cid: {"received": 0, "duplicates": 0, "out_of_order": 0, "highest": -1}
                     for cid in self.incoming}
        self.tcp_tx = {}  # "src>dst/fam/tcp" -> what this node wrote
        self.tcp_rx = {}  # "src>dst/fam/tcp" -> what this node read
        self.counters_before = read_counters()
        self.threads = []

    # UDP -----------------------------------------------------------------------
    def udp_socket(self, family, bind_addr):
        fam = socket.AF_INET if family == 4 else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        if family == 6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((bind_addr, self.topo["udp_port"] if bind_addr in ("0.0.0.0", "::") else 0))
        return s

    def receiver(self, sock):
        sock.settimeout(0.2)
        while self.running:
            try:
                data = sock.recv(2048)
            except socket.timeout:
                continue
            except OSError:
                continue
            if len(data) < UDP_SIZE:
                continue
            magic, cid, seq, sent_at = struct.unpack_from(UDP_FORMAT, data)
            if magic != MAGIC or cid not in self.seen:
                continue
            seen, st = self.seen[cid], self.recv[cid]
            if seq >= len(seen):
                grow = seq + 1 - len(seen) + 4096
                seen.extend(b"\0" * grow)
                self.stamp[cid].extend([0.0] * grow)
            self.stamp[cid][seq] = sent_at
            if seen[seq]:
                st["duplicates"] += 1
                continue
            seen[seq] = 1
            st["received"] += 1
            if seq < st["highest"]:
                st["out_of_order"] += 1
            else:
                st["highest"] = seq

    def sender(self, socks):
        interval = 1.0 / self.rate
        pad = b"\0" * (UDP_PAYLOAD - UDP_SIZE)
        self.send_start = now()
        due = self.send_start
        seq = 0
        while self.sending:
            t = now()
            for c in self.outgoing:
                payload = struct.pack(UDP_FORMAT, MAGIC, c["id"], seq, t) + pad
                try:
                    socks[c["family"]].sendto(payload, (c["dst_addr"], self.topo["udp_port"]))
                except OSError as e:
                    errs = self.send_errors[c["name"]]
                    key = errno_name(e.errno)
                    errs[key] = errs.get(key, 0) + 1
                self.sent[c["name"]] = seq + 1
                self.sent_last[c["name"]] = t
            seq += 1
            # Paced, never bursting to catch up: a starved guest sends less, it
            # does not flood the receivers. Sequence numbers stay dense, so only
            # a datagram that left and never arrived counts as lost.
            due = max(due + interval, now())
            delay = due - now()
            if delay > 0:
                time.sleep(delay)

    # TCP -----------------------------------------------------------------------
    def tcp_stats(self, name, side):
        table = self.tcp_tx if side == "tx" else self.tcp_rx
        with self.lock:
            if side == "tx":
                return table.setdefault(name, {"sent": 0, "error": None})
            return table.setdefault(name, {"received": 0, "sequence_errors": 0, "max_stall_ms": 0.0,
                                           "error": None})

    def tcp_reader(self, conn, name):
        st = self.tcp_stats(name, "rx")
        buf = b""
        expect = 0
        last = now()
        conn.settimeout(0.2)
        while self.running:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                if self.sending:
                    st["max_stall_ms"] = max(st["max_stall_ms"], (now() - last) * 1000)
                continue
            except OSError as e:
                st["error"] = errno_name(e.errno)
                return
            if not data:
                if self.sending:
                    st["error"] = "closed by peer"
                return
            t = now()
            if self.sending:
                st["max_stall_ms"] = max(st["max_stall_ms"], (t - last) * 1000)
            last = t
            buf += data
            while len(buf) >= TCP_SIZE:
                seq, _ = struct.unpack_from(TCP_FORMAT, buf)
                buf = buf[TCP_SIZE:]
                if seq != expect:
                    st["sequence_errors"] += 1
                expect = seq + 1
                st["received"] += 1

    def tcp_writer(self, conn, name):
        st = self.tcp_stats(name, "tx")
        seq = 0
        start = now()
        while self.sending and self.running:
            try:
                conn.sendall(struct.pack(TCP_FORMAT, seq, now()))
            except OSError as e:
                st["error"] = errno_name(e.errno)
                return
            seq += 1
            st["sent"] = seq
            delay = start + seq / TCP_RATE - now()
            if delay > 0:
                time.sleep(delay)

    def tcp_server(self, lsock):
        lsock.settimeout(0.2)
        while self.running:
            try:
                conn, addr = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            peer = self.node_by_addr(addr[0])
            fam = 6 if ":" in addr[0] else 4
            self.spawn(self.tcp_reader, conn, f"{peer}>{self.node}/{fam}/tcp")
            self.spawn(self.tcp_writer, conn, f"{self.node}>{peer}/{fam}/tcp")

    def tcp_client(self, pair):
        peer = self.topo["nodes"][pair["b"]]
        fam = pair["family"]
        dst = peer["addr4"] if fam == 4 else peer["addr6"]
        src = self.me["addr4"] if fam == 4 else self.me["addr6"]
        s = socket.socket(socket.AF_INET if fam == 4 else socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((src, 0))
        s.settimeout(5)
        for _ in range(50):
            try:
                s.connect((dst, self.topo["tcp_port"]))
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.tcp_stats(f"{self.node}>{pair['b']}/{fam}/tcp", "tx")["error"] = "connect failed"
            return
        self.spawn(self.tcp_reader, s, f"{pair['b']}>{self.node}/{fam}/tcp")
        self.spawn(self.tcp_writer, s, f"{self.node}>{pair['b']}/{fam}/tcp")

    def node_by_addr(self, addr):
        addr = addr.replace("::ffff:", "")
        for name, n in self.topo["nodes"].items():
            if addr in (n.get("addr4"), n.get("addr6")):
                return name
        return addr

    def spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    # lifecycle -------------------------------------------------------------------
    def run(self):
        signal.signal(signal.SIGUSR1, lambda *_: setattr(self, "sending", False))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        send_socks = {}
        for fam, key, any_addr in ((4, "addr4", "0.0.0.0"), (6, "addr6", "::")):
            if not self.me.get(key):
                continue
            self.spawn(self.receiver, self.udp_socket(fam, any_addr))
            send_socks[fam] = self.udp_socket(fam, self.me[key])
            ls = socket.socket(socket.AF_INET if fam == 4 else socket.AF_INET6, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == 6:
                ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            ls.bind((any_addr, self.topo["tcp_port"]))
            ls.listen(16)
            self.spawn(self.tcp_server, ls)
        with open(os.path.join(self.out_dir, f"agent-{self.node}.listening"), "w"):
            pass
        # Clients connect only once every agent listens (the orchestrator says go).
        go = os.path.join(self.out_dir, "go")
        while not os.path.exists(go) and not stop.is_set():
            time.sleep(0.05)
        for pair in self.topo["pairs"]:
            if pair["a"] == self.node:
                self.spawn(self.tcp_client, pair)
        if self.outgoing:
            self.spawn(self.sender, send_socks)
        with open(os.path.join(self.out_dir, f"agent-{self.node}.ready"), "w"):
            pass
        stop.wait()
        self.sending = False
        time.sleep(0.3)
        self.running = False
        after = read_counters()
        report = {
            "node": self.node,
            "send_start": self.send_start,
            "rate": self.rate,
            "sent": self.sent,
            "send_errors": self.send_errors,
            "sent_last": self.sent_last,
            "received": {self.incoming[cid]["name"]: dict(st, missing=missing_runs(self.seen[cid], self.stamp[cid]))
                         for cid, st in self.recv.items()},
            "tcp_tx": self.tcp_tx,
            "tcp_rx": self.tcp_rx,
            "counters_before": self.counters_before,
            "counters_after": after,
        }
        path = os.path.join(self.out_dir, f"agent-{self.node}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(report, f)
        os.rename(path + ".tmp", path)


def missing_runs(seen, stamp):
    """Runs of sequence numbers never received, as [first, last, t_before, t_after]:
    t_before/t_after are the send times of the datagrams received just before and
    just after the run (None at the start), so the outage is timed by the sender's
    clock. Only up to the highest received; analysis adds the tail once the sent
    count is known."""
    runs, start = [], None
    top = len(seen) - 1
    while top >= 0 and not seen[top]:
        top -= 1
    for i in range(top + 1):
        if not seen[i]:
            if start is None:
                start = i
        elif start is not None:
            runs.append([start, i - 1, stamp[start - 1] if start > 0 else None, stamp[i]])
            start = None
    return {"runs": runs, "highest": top, "last_stamp": stamp[top] if top >= 0 else None}


def errno_name(num):
    import errno as errno_mod
    return errno_mod.errorcode.get(num, str(num)) if num else "error"


# --------------------------------------------------------------------- orchestrator

CLONE_NEWNET = 0x40000000


class ForkedAgent:
    """An agent in a forked child that joined the node's namespace with setns(2):
    the same as `ip netns exec NODE traffic.py agent`, without starting a new
    interpreter (seconds each in a loaded emulated guest). Popen-like interface."""

    def __init__(self, node, topo, out_dir, rate):
        log = os.path.join(out_dir, f"agent-{node}.log")
        self.returncode = None
        self.pid = os.fork()
        if self.pid:
            return
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            ns = os.open(f"/var/run/netns/{node}", os.O_RDONLY)
            if libc.setns(ns, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {node}")
            os.close(ns)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            Agent(node, topo, out_dir, rate).run()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        deadline = now() + timeout
        while self.poll() is None:
            if now() > deadline:
                raise subprocess.TimeoutExpired(f"agent {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def kill(self):
        self.send_signal(signal.SIGKILL)
        self.wait(10)



def orchestrate(topo_path, out_dir, rate, warmup):
    with open(topo_path) as f:
        topo = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    procs = {}
    pcap = os.path.join(out_dir, "switch.pcap")
    cap_err = open(os.path.join(out_dir, "tcpdump.log"), "w")
    capture = subprocess.Popen(
        ["ip", "netns", "exec", topo["switch"], "tcpdump", "-i", "any", "-Q", "in", "-n", "-s", "96",
         "-B", "16384", "-w", pcap, "ip or ip6"],
        stdout=cap_err, stderr=subprocess.STDOUT)
    for node in topo["nodes"]:
        procs[node] = ForkedAgent(node, topo, out_dir, rate)

    def wait_files(suffix, timeout):
        deadline = now() + timeout
        while now() < deadline:
            if all(os.path.exists(os.path.join(out_dir, f"agent-{n}.{suffix}")) for n in topo["nodes"]):
                return True
            if any(p.poll() is not None for p in procs.values()):
                return False
            time.sleep(0.05)
        return False

    ok = wait_files("listening", 60)
    # tcpdump announces itself on stderr once the capture is open.
    deadline = now() + 30
    while ok and now() < deadline and "listening on" not in open(os.path.join(out_dir, "tcpdump.log")).read():
        time.sleep(0.05)
    open(os.path.join(out_dir, "go"), "w").close()
    ok = ok and wait_files("ready", 60)
    if not ok:
        print("traffic: agents failed to start", file=sys.stderr)
    time.sleep(warmup)
    with open(os.path.join(out_dir, "ready"), "w") as f:
        f.write("ok\n" if ok else "failed\n")
    stop_file = os.path.join(out_dir, "stop")
    while not stop.is_set() and not os.path.exists(stop_file):
        time.sleep(0.1)
    t_stop = now()
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGUSR1)
    time.sleep(1.0)  # let everything in flight land
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    capture.send_signal(signal.SIGINT)
    try:
        capture.wait(timeout=30)
    except subprocess.TimeoutExpired:
        capture.kill()
    cap_err.close()
    report = analyze(topo, out_dir)
    report["stopped_at"] = t_stop
    report["started_ok"] = ok
    path = os.path.join(out_dir, "traffic.json")
    with open(path + ".tmp", "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    os.rename(path + ".tmp", path)


# ------------------------------------------------------------------------- analysis


def read_marks(path):
    marks = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] in ("enforce", "relax"):
                    marks.append((float(parts[0]), parts[1], parts[2]))
    except OSError:
        pass
    return sorted(marks)


def windows_for(channel, marks):
    """Intervals [start, end) during which the channel's enforcement is required."""
    out, start = [], None
    for t, kind, target in marks:
        if target not in ("all", channel):
            continue
        if kind == "enforce" and start is None:
            start = t
        elif kind == "relax" and start is not None:
            out.append([start, t])
            start = None
    if start is not None:
        out.append([start, float("inf")])
    return out


def parse_pcap(path):
    """Yields (time, src, dst, protocol, ports) for every IP packet in a tcpdump file
    (link types: Linux cooked v1/v2, Ethernet); ports is (source, destination) for TCP and
    UDP without IPv6 extension headers, else None."""
    try:
        data = open(path, "rb").read()
    except OSError:
        return
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    else:
        endian = ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        ts_sec, ts_frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = ts_sec + ts_frac / (1e9 if nano else 1e6)
        if linktype == 113:  # LINUX_SLL
            if len(pkt) < 16:
                continue
            proto, l3 = struct.unpack("!H", pkt[14:16])[0], pkt[16:]
        elif linktype == 276:  # LINUX_SLL2
            if len(pkt) < 20:
                continue
            proto, l3 = struct.unpack("!H", pkt[0:2])[0], pkt[20:]
        elif linktype == 1:
            if len(pkt) < 14:
                continue
            proto, l3 = struct.unpack("!H", pkt[12:14])[0], pkt[14:]
        else:
            continue
        if proto == 0x0800 and len(l3) >= 20:
            yield (t, socket.inet_ntop(socket.AF_INET, l3[12:16]), socket.inet_ntop(socket.AF_INET, l3[16:20]),
                   l3[9], l4_ports(l3[9], l3[(l3[0] & 0x0F) * 4:]))
        elif proto == 0x86DD and len(l3) >= 40:
            yield (t, socket.inet_ntop(socket.AF_INET6, l3[8:24]), socket.inet_ntop(socket.AF_INET6, l3[24:40]),
                   l3[6], l4_ports(l3[6], l3[40:]))


def l4_ports(protocol, l4):
    """(source port, destination port) of a TCP (6) or UDP (17) header, else None."""
    if protocol in (6, 17) and len(l4) >= 4:
        return struct.unpack("!HH", l4[:4])
    return None


def analyze(topo, out_dir):
    agents = {}
    for node in topo["nodes"]:
        try:
            with open(os.path.join(out_dir, f"agent-{node}.json")) as f:
                agents[node] = json.load(f)
        except (OSError, ValueError):
            agents[node] = None
    marks = read_marks(os.path.join(out_dir, "marks"))
    by_addr = {}
    for c in topo["channels"]:
        by_addr[(c["src_addr"], c["dst_addr"])] = c["name"]
    wire = {c["name"]: {"esp": 0, "plaintext": 0, "plaintext_after_enforcement": 0,
                        "esp_after_enforcement": 0, "first_plaintext_violation": None, "control": 0}
            for c in topo["channels"]}
    wins = {c["name"]: windows_for(c["name"], marks) for c in topo["channels"]}
    control_port = topo.get("control_tcp_port")
    for t, src, dst, proto, ports in parse_pcap(os.path.join(out_dir, "switch.pcap")):
        name = by_addr.get((src, dst))
        if name is None:
            continue
        w = wire[name]
        if proto == 6 and control_port is not None and ports is not None and control_port in ports:
            w["control"] += 1
            continue
        enforced = any(a <= t < b for a, b in wins[name])
        if proto == 50:
            w["esp"] += 1
            if enforced:
                w["esp_after_enforcement"] += 1
        else:
            w["plaintext"] += 1
            if enforced:
                w["plaintext_after_enforcement"] += 1
                if w["first_plaintext_violation"] is None:
                    w["first_plaintext_violation"] = t
    capture_drops = None
    try:
        for line in open(os.path.join(out_dir, "tcpdump.log")):
            if "dropped by kernel" in line:
                capture_drops = int(line.split()[0])
    except (OSError, ValueError):
        pass

    streams = []
    for c in topo["channels"]:
        sender, receiver = agents.get(c["src"]), agents.get(c["dst"])
        s = {"channel": c["name"], "sent": None, "received": None, "lost": None, "duplicates": None,
             "out_of_order": None, "send_errors": {}, "max_gap_ms": 0.0, "loss_windows": [],
             "tail_ok": None, "enforced_windows": wins[c["name"]]}
        s.update(wire[c["name"]])
        if sender and receiver:
            sent = sender["sent"].get(c["name"], 0)
            r = receiver["received"].get(c["name"], {})
            missing = r.get("missing", {})
            runs = [list(x) for x in missing.get("runs", [])]
            top = missing.get("highest", -1)
            if top < sent - 1:
                runs.append([top + 1, sent - 1, missing.get("last_stamp"), sender["sent_last"].get(c["name"])])
            start = sender["send_start"] or 0
            lost = sum(x[1] - x[0] + 1 for x in runs)
            s.update(sent=sent, received=r.get("received", 0), lost=lost,
                     duplicates=r.get("duplicates", 0), out_of_order=r.get("out_of_order", 0),
                     send_errors=sender["send_errors"].get(c["name"], {}))
            # A loss window runs from the last datagram that arrived before the run
            # to the first that arrived after it (sender's clock).
            windows = [[x[2] if x[2] is not None else start, x[3] if x[3] is not None else start, x[1] - x[0] + 1]
                       for x in runs]
            if sender["sent_last"].get(c["name"]) and sent > 1:
                s["rate_achieved"] = round((sent - 1) / max(1e-6, sender["sent_last"][c["name"]] - start), 1)
            s["max_gap_ms"] = round(max([(b - a) * 1000.0 for a, b, _ in windows], default=0.0), 1)
            s["loss_windows"] = [[round(a, 3), round(b, 3), n] for a, b, n in windows][:20]
            # Healthy at the end: nothing lost in the last two seconds of sending.
            end = sender["sent_last"].get(c["name"]) or 0
            s["tail_ok"] = not any(b >= end - 2.0 for a, b, _ in windows)
        streams.append(s)

    tcp = {}
    for node, a in agents.items():
        if not a:
            continue
        for name, st in a.get("tcp_tx", {}).items():
            tcp.setdefault(name, {})["sent"] = st["sent"]
            if st.get("error"):
                tcp[name]["error"] = f"writer: {st['error']}"
        for name, st in a.get("tcp_rx", {}).items():
            t = tcp.setdefault(name, {})
            t.update(received=st["received"], sequence_errors=st["sequence_errors"],
                     max_stall_ms=round(st["max_stall_ms"], 1))
            if st.get("error") and not t.get("error"):
                t["error"] = f"reader: {st['error']}"
    for t in tcp.values():
        if t.get("sequence_errors") and not t.get("error"):
            t["error"] = f"{t['sequence_errors']} out-of-sequence records"
    counters = {}
    for node, a in agents.items():
        if not a:
            counters[node] = {"error": "no agent report"}
            continue
        before, after = a["counters_before"], a["counters_after"]
        moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        counters[node] = moved

    def total(key):
        return sum(s[key] or 0 for s in streams)

    return {
        "streams": streams,
        "tcp": tcp,
        "counters_moved": counters,
        "capture_drops": capture_drops,
        "agents_missing": [n for n, a in agents.items() if a is None],
        "totals": {
            "sent": total("sent"), "received": total("received"), "lost": total("lost"),
            "duplicates": total("duplicates"), "out_of_order": total("out_of_order"),
            "plaintext_after_enforcement": total("plaintext_after_enforcement"),
            "esp": total("esp"), "plaintext": total("plaintext"), "control": total("control"),
            "max_gap_ms": max([s["max_gap_ms"] for s in streams], default=0.0),
        },
        "marks": marks,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("agent")
    a.add_argument("--node", required=True)
    a.add_argument("--topology", required=True)
    a.add_argument("--dir", required=True)
    a.add_argument("--rate", type=float, default=500)
    r = sub.add_parser("run")
    r.add_argument("--topology", required=True)
    r.add_argument("--dir", required=True)
    r.add_argument("--rate", type=float, default=500)
    r.add_argument("--warmup", type=float, default=1.0)
    z = sub.add_parser("analyze")
    z.add_argument("--topology", required=True)
    z.add_argument("--dir", required=True)
    args = ap.parse_args()
    if args.cmd == "agent":
        with open(args.topology) as f:
            topo = json.load(f)
        Agent(args.node, topo, args.dir, args.rate).run()
    elif args.cmd == "run":
        orchestrate(args.topology, args.dir, args.rate, args.warmup)
    else:
        with open(args.topology) as f:
            topo = json.load(f)
        json.dump(analyze(topo, args.dir), sys.stdout, indent=1, sort_keys=True)
        print()


if __name__ == "__main__":
    main()
