#!/usr/bin/env python3
"""Meshward kernel suite: the runner inside the guest.

Started by scripts/kernel-suite through virtme-ng, once per kernel. Loads the
modules ESP needs, proves an rfc4106 SA can be installed, then for every
scenarios/NN-name.sh in order: builds the namespaces, installs the foreign state,
starts the traffic, runs the scenario, stops the traffic, verifies the foreign
state, tears everything down and writes RESULTS/NN-name.json. Finally writes
RESULTS/summary.json. Standard library only.

Scenario header directives (comment lines near the top of the file):
  # ks-requires: meshward-apply     skipped unless the meshward binary has `apply`
  # ks-expect: clean|loss|outage    verdict rule (default clean), see docs/kernel-suite.md
  # ks-timeout: SECONDS             scenario script time limit (default 240)
  # ks-outage-pairs: a~b/4 ...      with ks-expect: outage, the only pairs that may lose
                                    packets; every other pair must be clean, and no xfrm
                                    drop counter may move on a node outside these pairs
  # ks-allowed-counters: n:C ...    with ks-outage-pairs: counters that may move on such a
                                    node all the same (the scenario says why)
"""

import argparse
import difflib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SWITCH = "ks-switch"
REQID_FOREIGN = 0x1234

# Nodes of the test fleet. The web tier is IPv4 only, app and db are dual-stack,
# so the suite covers esp4 and esp6 and a spec whose pairs share one family only.
NODES = {
    "web-1": {"addr4": "198.18.1.10", "addr6": None, "mac": "02:00:c6:12:01:0a"},
    "web-2": {"addr4": "198.18.1.11", "addr6": None, "mac": "02:00:c6:12:01:0b"},
    "app-1": {"addr4": "198.18.1.20", "addr6": "2001:db8::20", "mac": "02:00:c6:12:01:14"},
    "db-1": {"addr4": "198.18.1.30", "addr6": "2001:db8::30", "mac": "02:00:c6:12:01:1e"},
}
# Pairs that carry test traffic (both directions, one stream each).
PAIRS = [("web-1", "app-1", 4), ("web-2", "app-1", 4), ("app-1", "db-1", 4), ("app-1", "db-1", 6)]
# Needed by every scenario; then the crypto a cipher change may ask for (best effort:
# some are built in, and the crypto API loads what it needs on demand anyway).
MODULES = ["xfrm_user", "esp4", "esp6", "veth", "bridge"]
OPTIONAL_MODULES = ["af_packet", "gcm", "chacha20poly1305", "authenc", "cbc"]


def log(msg):
    print(f"[guest {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd, check=True, quiet=False):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout.strip()}")
    if not quiet and r.returncode != 0:
        log(f"(ignored) {' '.join(cmd)}: {r.stdout.strip()}")
    return r


def topology():
    nodes = {n: dict(v, port=f"p-{n}") for n, v in NODES.items()}
    channels, pairs = [], []
    for a, b, fam in PAIRS:
        key = "addr4" if fam == 4 else "addr6"
        pairs.append({"name": f"{a}~{b}/{fam}", "a": a, "b": b, "family": fam})
        for src, dst in ((a, b), (b, a)):
            channels.append({"id": len(channels), "name": f"{src}>{dst}/{fam}", "src": src, "dst": dst,
                             "family": fam, "src_addr": nodes[src][key], "dst_addr": nodes[dst][key]})
    return {"switch": SWITCH, "udp_port": 5001, "tcp_port": 5002, "control_tcp_port": 7443, "nodes": nodes,
            "channels": channels, "pairs": pairs}


# ----------------------------------------------------------------------- namespaces


def teardown():
    """Kills whatever still runs in the suite's namespaces and deletes them (no
    process starts: `ip netns pids` by hand)."""
    present = [ns for ns in list(NODES) + [SWITCH] if os.path.exists(f"/var/run/netns/{ns}")]
    if not present:
        return
    inodes = {os.stat(f"/var/run/netns/{ns}").st_ino for ns in present}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    batch(None, [f"netns del {ns}" for ns in present])


def batch(ns, lines):
    """Runs `ip` commands in one process (ip -batch), in order, stopping at the first error.
    Process start-up is the dominant cost in an emulated guest."""
    args = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
    r = subprocess.run(args, input="\n".join(lines) + "\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip {'-n ' + ns if ns else ''} -batch failed: {r.stdout.strip()}")


def setup(topo):
    teardown()
    batch(None, [f"netns add {ns}" for ns in [SWITCH] + list(topo["nodes"])])
    sh("ip", "netns", "exec", SWITCH, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
       "net.ipv6.conf.default.disable_ipv6=1")
    sw = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
    for name, n in topo["nodes"].items():
        sw += [f"link add {n['port']} type veth peer name eth0 netns {name}",
               f"link set {n['port']} master br0 up"]
    batch(SWITCH, sw)
    for name, n in topo["nodes"].items():
        lines = ["link set lo up", f"link set eth0 address {n['mac']}", f"addr add {n['addr4']}/24 dev eth0"]
        if n["addr6"]:
            lines.append(f"addr add {n['addr6']}/64 dev eth0 nodad")
        lines.append("link set eth0 up")
        # Permanent neighbours: no ARP/ND on the wire, so neither resolution nor
        # neighbour unreachability detection ever meets an IPsec policy.
        for other, o in topo["nodes"].items():
            if other == name:
                continue
            lines.append(f"neigh replace {o['addr4']} lladdr {o['mac']} dev eth0 nud permanent")
            if n["addr6"] and o["addr6"]:
                lines.append(f"neigh replace {o['addr6']} lladdr {o['mac']} dev eth0 nud permanent")
        batch(name, lines)


FOREIGN_MARKERS = ("198.18.9.", "2001:db8:9:")


def run_all(commands, inputs=None):
    """Runs every command at once (each a list of arguments, with its standard input text from
    `inputs` if given) and returns their CompletedProcess results in order. In the emulated
    guest a process start costs a few hundred milliseconds; per-node commands that do not
    depend on each other run side by side."""
    procs = [subprocess.Popen(c, stdin=subprocess.PIPE if inputs else subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in commands]
    results = []
    for i, (c, p) in enumerate(zip(commands, procs)):
        out, _ = p.communicate(inputs[i] if inputs else None)
        results.append(subprocess.CompletedProcess(c, p.returncode, out, None))
    return results


def foreign_snapshots(nodes):
    """The foreign objects (see lib/foreign-state.sh) of each node as `ip xfrm` prints them,
    sorted by block (the text that `foreign-state.sh snapshot` writes), the nodes read side by
    side: {node: text}."""
    reads = run_all([["ip", "-n", n, "-batch", "-"] for n in nodes], ["xfrm state\nxfrm policy\n"] * len(nodes))
    for n, r in zip(nodes, reads):
        if r.returncode != 0:
            raise RuntimeError(f"ip -n {n} xfrm state/policy failed ({r.returncode}): {r.stdout.strip()}")
    return {n: foreign_blocks(r.stdout) for n, r in zip(nodes, reads)}


def foreign_blocks(text):
    """The blocks of `ip xfrm state` and `ip xfrm policy` text that name a foreign peer, sorted."""
    blocks, cur = [], []
    for line in text.splitlines():
        if line and not line[0].isspace() and cur:
            blocks.append("\n".join(cur))
            cur = []
        if line:
            cur.append(line)
    if cur:
        blocks.append("\n".join(cur))
    return "\n".join(sorted(b for b in blocks if any(m in b for m in FOREIGN_MARKERS))) + "\n"


def foreign_command(cmd, node, path=None):
    n = NODES[node]
    args = ["bash", os.path.join(HERE, "lib", "foreign-state.sh"), cmd, node, n["addr4"], n["addr6"] or ""]
    if path:
        args.append(path)
    return args


# ------------------------------------------------------------------------ scenarios


def directives(path):
    d = {"requires": "", "expect": "clean", "timeout": "240", "outage-pairs": "", "allowed-counters": ""}
    with open(path) as f:
        for i, line in enumerate(f):
            if i > 40:
                break
            if line.startswith("# ks-") and ":" in line:
                k, v = line[5:].split(":", 1)
                d[k.strip()] = v.strip()
    return d


def verdict(expect, exit_code, traffic, foreign_diffs, topo, outage_pairs=(), allowed_counters=()):
    """Returns (status, reasons) for one scenario run. `outage_pairs` (pair names, "a~b/4"),
    with expect "outage": the only pairs allowed to lose; empty allows every pair."""
    reasons = []
    if exit_code != 0:
        reasons.append(f"scenario script exited {exit_code}")
    if traffic is None:
        return "fail", reasons + ["no traffic report"]
    t = traffic["totals"]
    if not traffic.get("started_ok"):
        reasons.append("traffic did not start")
    if traffic["agents_missing"]:
        reasons.append(f"no traffic report from {', '.join(traffic['agents_missing'])}")
    if foreign_diffs:
        reasons.append("foreign state changed on " + ", ".join(foreign_diffs))
    if traffic.get("capture_drops"):
        reasons.append(f"capture dropped {traffic['capture_drops']} packets (plaintext count unreliable)")
    # Udp*RcvbufErrors: the receiving socket overflowed (the guest could not keep up), which
    # would be mistaken for loss on the wire: inconclusive. Udp*InErrors also counts datagrams
    # the socket's IPsec policy check dropped (plaintext where ESP is required, which the
    # xfrm counters show too): a failure in a clean scenario, expected in an outage.
    def udp(suffix):
        moved = {n: {k: v for k, v in c.items() if k.startswith("Udp") and k.endswith(suffix)}
                 for n, c in traffic["counters_moved"].items()}
        return {n: c for n, c in moved.items() if c}
    rcvbuf = udp("RcvbufErrors")
    if rcvbuf and expect != "loss":
        reasons.append(f"receiver socket drops {rcvbuf} (guest too slow for the rate: lower --rate)")
    in_errors = udp("InErrors")
    if in_errors and not rcvbuf and expect == "clean":
        reasons.append(f"UDP input errors {in_errors} (datagrams dropped by the receiver's policy check)")
    for s in traffic["streams"]:
        if s["enforced_windows"] and not s["esp_after_enforcement"]:
            reasons.append(f"{s['channel']}: enforced but no ESP seen on the wire")
    tcp_errors = {k: v["error"] for k, v in traffic["tcp"].items() if v.get("error")}
    xfrm_moved = {n: {k: v for k, v in c.items() if k.startswith("Xfrm")} for n, c in traffic["counters_moved"].items()}
    xfrm_moved = {n: c for n, c in xfrm_moved.items() if c}
    if expect == "clean":
        if t["lost"]:
            reasons.append(f"{t['lost']} packets lost")
        if t["duplicates"]:
            reasons.append(f"{t['duplicates']} duplicated packets")
        if t["plaintext_after_enforcement"]:
            reasons.append(f"{t['plaintext_after_enforcement']} plaintext packets after enforcement")
        if xfrm_moved:
            reasons.append(f"xfrm drop counters moved: {xfrm_moved}")
        if tcp_errors:
            reasons.append(f"TCP errors: {tcp_errors}")
    elif expect == "loss":
        if not t["lost"]:
            reasons.append("expected losses from the naive order, saw none: the suite cannot detect loss")
    elif expect == "outage":
        if outage_pairs:
            unknown = [p for p in outage_pairs if p not in {q["name"] for q in topo["pairs"]}]
            if unknown:
                reasons.append(f"ks-outage-pairs names pairs the topology lacks: {', '.join(unknown)}")
            allowed = {c["name"] for c in topo["channels"]
                       if f"{c['src']}~{c['dst']}/{c['family']}" in outage_pairs
                       or f"{c['dst']}~{c['src']}/{c['family']}" in outage_pairs}
            for s in traffic["streams"]:
                if s["channel"] in allowed:
                    continue
                if s["lost"] or s["duplicates"]:
                    reasons.append(f"{s['channel']}: {s['lost']} lost, {s['duplicates']} duplicated, "
                                   "outside the pairs allowed an outage")
            outage_nodes = {n for p in outage_pairs for n in p.split("/")[0].split("~")}
            quiet = {n: {k: v for k, v in c.items() if f"{n}:{k}" not in allowed_counters}
                     for n, c in xfrm_moved.items() if n not in outage_nodes}
            quiet = {n: c for n, c in quiet.items() if c}
            if quiet:
                reasons.append(f"xfrm drop counters moved outside the outage's nodes: {quiet}")
        if t["plaintext_after_enforcement"]:
            reasons.append(f"{t['plaintext_after_enforcement']} plaintext packets after enforcement")
        bad_tail = [s["channel"] for s in traffic["streams"] if s["tail_ok"] is False]
        if bad_tail:
            reasons.append(f"still losing packets at the end on {', '.join(bad_tail)}")
        if tcp_errors:
            reasons.append(f"TCP errors: {tcp_errors}")
    else:
        reasons.append(f"unknown ks-expect {expect!r}")
    return ("pass" if not reasons else "fail"), reasons


def run_scenario(path, args, topo, meshward, has_apply, results):
    name = os.path.basename(path)[:-3]
    d = directives(path)
    result = {"scenario": name, "kernel": os.uname().release, "expect": d["expect"]}
    out_json = os.path.join(results, f"{name}.json")
    if "meshward-apply" in d["requires"] and not has_apply:
        result.update(status="skipped", reasons=["skipped: meshward lacks apply"])
        json.dump(result, open(out_json, "w"), indent=1)
        log(f"{name}: skipped (meshward lacks apply)")
        return result
    work = os.path.join("/tmp/kernel-suite", name)
    shutil.rmtree(work, ignore_errors=True)
    tdir = os.path.join(work, "traffic")
    os.makedirs(tdir)
    # Meshward refuses a state directory that other users can read (it holds the keys).
    os.makedirs(os.path.join(work, "state"), mode=0o700)
    os.chmod(os.path.join(work, "state"), 0o700)
    keep = os.path.join(results, name)
    shutil.rmtree(keep, ignore_errors=True)
    os.makedirs(keep)
    log(f"{name}: setting up namespaces")
    started = time.time()
    setup(topo)
    t_namespaces = time.time()
    topo_path = os.path.join(work, "topology.json")
    json.dump(topo, open(topo_path, "w"), indent=1)
    installs = run_all([foreign_command("install", node) for node in NODES])
    for node, r in zip(NODES, installs):
        if r.returncode != 0:
            raise RuntimeError(f"foreign state install on {node}: {r.stdout}")
    for node, text in foreign_snapshots(list(NODES)).items():
        with open(os.path.join(work, f"foreign-{node}.txt"), "w") as f:
            f.write(text)
    t_foreign = time.time()
    traffic_log = open(os.path.join(keep, "traffic.log"), "w")
    traffic = subprocess.Popen([sys.executable, os.path.join(HERE, "traffic.py"), "run", "--topology", topo_path,
                                "--dir", tdir, "--rate", str(args.rate), "--warmup", "1.0"],
                               stdout=traffic_log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(tdir, "ready")) and time.time() < deadline and traffic.poll() is None:
        time.sleep(0.1)
    env = dict(os.environ)
    if getattr(args, "libdir", None):
        env["LD_LIBRARY_PATH"] = args.libdir
    env.update({
        "MESHWARD": meshward or "",
        "KS_HAS_APPLY": "1" if has_apply else "0",
        "KS_SCENARIO": name,
        "KS_WORK": work,
        "KS_STATE": os.path.join(work, "state"),
        "KS_SPECS": os.path.join(HERE, "specs"),
        "KS_LIB": os.path.join(HERE, "lib"),
        "KS_MARKS": os.path.join(tdir, "marks"),
        "KS_TOPOLOGY": topo_path,
        "KS_NODES": " ".join(NODES),
        "KS_PAIRS": " ".join(p["name"] for p in topo["pairs"]),
        "KS_CHANNELS": " ".join(c["name"] for c in topo["channels"]),
        "KS_SWITCH": SWITCH,
        "KS_RATE": str(args.rate),
    })
    for node, n in NODES.items():
        key = node.replace("-", "_")
        env[f"KS_ADDR4_{key}"] = n["addr4"]
        env[f"KS_ADDR6_{key}"] = n["addr6"] or ""
    t_traffic = time.time()
    log(f"{name}: running (expect {d['expect']}; set up in {t_traffic - started:.1f} s: namespaces "
        f"{t_namespaces - started:.1f}, foreign state {t_foreign - t_namespaces:.1f}, traffic {t_traffic - t_foreign:.1f})")
    slog = open(os.path.join(keep, "scenario.log"), "w")
    t0 = time.time()
    proc = subprocess.Popen(["bash", path], cwd=work, env=env, stdout=slog, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        code = proc.wait(timeout=int(d["timeout"]))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = 124
        slog.write(f"\nscenario timed out after {d['timeout']} s\n")
    slog.close()
    scenario_secs = time.time() - t0
    t_end = time.time()
    time.sleep(1.0)
    traffic.send_signal(signal.SIGTERM)
    try:
        traffic.wait(timeout=120)
    except subprocess.TimeoutExpired:
        traffic.kill()
    report = None
    try:
        report = json.load(open(os.path.join(tdir, "traffic.json")))
    except (OSError, ValueError):
        pass
    diffs = []
    after_all = foreign_snapshots(list(NODES))
    for node in NODES:
        before = open(os.path.join(work, f"foreign-{node}.txt")).read()
        after = after_all[node]
        if before != after:
            diffs.append(node)
            with open(os.path.join(keep, f"foreign-{node}.diff"), "w") as f:
                f.writelines(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "before", "after"))
    # Kernel objects at the end, for the record.
    finals = run_all([c for node in NODES for c in (["ip", "-n", node, "-s", "xfrm", "state"],
                                                     ["ip", "-n", node, "xfrm", "policy"])])
    with open(os.path.join(keep, "xfrm-final.txt"), "w") as f:
        for k, node in enumerate(NODES):
            f.write(f"== {node}\n")
            f.write(finals[2 * k].stdout)
            f.write(finals[2 * k + 1].stdout)
    status, reasons = verdict(d["expect"], code, report, diffs, topo, d["outage-pairs"].split(),
                              d["allowed-counters"].split())
    if code != 0:
        # Why the script stopped, so the summary says it without the log: its last FAIL line
        # (ks_fail, or the ERR trap naming the command and line that set -e stopped on).
        fails = [l.strip() for l in open(os.path.join(keep, "scenario.log"), errors="replace") if "FAIL: " in l]
        if fails:
            reasons.append(fails[-1].split("FAIL: ", 1)[1])
    notes = {}
    try:
        for line in open(os.path.join(work, "notes")):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                notes[k] = v
    except OSError:
        pass
    for fname in ("traffic.json", "marks", "tcpdump.log") + tuple(f"agent-{n}.log" for n in NODES):
        src = os.path.join(tdir, fname)
        if os.path.exists(src):
            shutil.copy(src, keep)
    # The logs a scenario writes into its scratch directory (meshward's own, an agent's).
    for src in glob.glob(os.path.join(work, "*.log")):
        shutil.copy(src, keep)
    result.update(status=status, reasons=reasons, exit_code=code, scenario_seconds=round(scenario_secs, 1),
                  total_seconds=round(time.time() - started, 1), notes=notes,
                  totals=report["totals"] if report else None,
                  counters_moved=report["counters_moved"] if report else None,
                  foreign_unchanged=not diffs)
    json.dump(result, open(out_json, "w"), indent=1, sort_keys=True)
    teardown()
    log(f"{name}: {status} {'; '.join(reasons)} (wrap-up {time.time() - t_end:.1f} s)")
    return result


BEHAVIOUR = "kernel-behaviour"
# The shared behaviour suite, and the watch's record of which XFRM events each change produces
# (Tests/KernelTests/NetlinkWatchKernelFactsTests.swift, whose WATCH-FACT lines land in the log).
BEHAVIOUR_FILTER = "KernelBehaviourTests|NetlinkWatchKernelFactsTests"


def run_behaviour(binary, results):
    """The shared kernel behaviour suite (Tests/KernelTests/KernelBehaviourTests.swift) and the
    watch's kernel facts (NetlinkWatchKernelFactsTests) against this kernel through the XFRM netlink backend, with real ESP SAs: the test binary is the
    host's debug build, which the guest sees through the shared filesystem. Its tests make and
    delete their own namespaces (mwtest-*). Fails when any test fails or when the SA cases
    were skipped (the probe for ESP failed)."""
    result = {"scenario": BEHAVIOUR, "kernel": os.uname().release, "expect": "tests pass"}
    log(f"{BEHAVIOUR}: running {os.path.basename(binary)} --filter '{BEHAVIOUR_FILTER}'")
    out_path = os.path.join(results, f"{BEHAVIOUR}.log")
    t0 = time.time()
    with open(out_path, "w") as out:
        proc = subprocess.Popen([binary, "--testing-library", "swift-testing", "--filter", BEHAVIOUR_FILTER],
                                cwd="/tmp", stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, NO_COLOR="1"))
        try:
            code = proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = 124
    secs = time.time() - t0
    text = open(out_path, errors="replace").read()
    reasons = []
    if code != 0:
        reasons.append(f"test binary exited {code}" + (" (timed out after 600 s)" if code == 124 else "")
                       + f"; see {BEHAVIOUR}.log")
    if "cannot hold ESP SAs" in text:
        reasons.append("SA cases were skipped: the test fixture found no ESP in this kernel")
    summary = [line.strip() for line in text.splitlines() if "Test run with" in line]
    failed_tests = [line.strip() for line in text.splitlines() if "\u2718" in line]  # swift-testing's failure mark
    result.update(status="pass" if not reasons else "fail", reasons=reasons, exit_code=code,
                  scenario_seconds=round(secs, 1), notes={"summary": summary[-1] if summary else ""},
                  failed_tests=failed_tests[:50])
    json.dump(result, open(os.path.join(results, f"{BEHAVIOUR}.json"), "w"), indent=1, sort_keys=True)
    log(f"{BEHAVIOUR}: {result['status']} in {secs:.1f} s {'; '.join(reasons)}")
    return result


BENCH = "netlink-sa-bench"


def run_bench(binary, results, count):
    """`meshward-bench netlink --objects sas`: ESP SA install/dump/delete rates of the netlink
    backend against `ip -batch` and one `ip` per operation, in namespaces of its own
    (mwtest-bench-*). Informational: it fails only when the benchmark itself fails. The guest
    is emulated (no KVM), so the rates are far below a real machine's; the ratio is what
    compares."""
    result = {"scenario": BENCH, "kernel": os.uname().release, "expect": "runs"}
    log(f"{BENCH}: {count} SAs per method")
    t0 = time.time()
    r = subprocess.run([binary, "netlink", "--objects", "sas", "--policies", str(count), "--runs", "1",
                        "--sample", str(max(1, count // 100))], cwd="/tmp", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    secs = time.time() - t0
    with open(os.path.join(results, f"{BENCH}.txt"), "w") as f:
        f.write(r.stdout)
    table = []
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            break
        table.append(line)
        log(f"{BENCH}: {line}")
    reasons = [] if r.returncode == 0 else [f"meshward-bench exited {r.returncode}: {r.stdout.strip()[-300:]}"]
    result.update(status="pass" if not reasons else "fail", reasons=reasons, exit_code=r.returncode,
                  scenario_seconds=round(secs, 1), notes={"table": table})
    json.dump(result, open(os.path.join(results, f"{BENCH}.json"), "w"), indent=1, sort_keys=True)
    return result


STAGE = "/tmp/kernel-suite-bin"


def stage_binary(binary):
    """Copies `binary` and every shared library it loads into the guest's tmpfs, once per boot,
    and returns (copy, library directory). The host's filesystem reaches the guest over 9p
    without a cache, so every start of a Swift binary (about 90 MB of mapped libraries:
    Foundation, ICU, the runtime) page-faults its libraries in through 9p again: about 7 s per
    `meshward` command in an emulated guest. From tmpfs a start costs a fraction of that. The
    copy is byte-for-byte the same binary; the libraries are found first through
    LD_LIBRARY_PATH (which precedes the binary's RUNPATH)."""
    libdir = os.path.join(STAGE, "lib")
    os.makedirs(libdir, exist_ok=True)
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        parts = line.split("=>")
        if len(parts) != 2:
            continue
        lib = parts[1].split("(")[0].strip()
        name = os.path.basename(lib)
        if not lib.startswith("/") or name.startswith("ld-linux"):
            continue
        dest = os.path.join(libdir, name)
        if not os.path.exists(dest):
            shutil.copy2(lib, dest)
    copy = os.path.join(STAGE, os.path.basename(binary))
    shutil.copy2(binary, copy)
    return copy, libdir


def load_modules():
    loaded, missing = [], []
    for m in MODULES + OPTIONAL_MODULES:
        r = subprocess.run(["modprobe", m], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode == 0:
            loaded.append(m)
        elif m in MODULES:
            missing.append(m)
    return loaded, missing


def esp_probe():
    """Installs one rfc4106 SA in a scratch namespace: the whole suite depends on it."""
    subprocess.run(["ip", "netns", "del", "ks-probe"], stderr=subprocess.DEVNULL)
    sh("ip", "netns", "add", "ks-probe")
    key = "0x" + os.urandom(36).hex()
    r = sh("ip", "-n", "ks-probe", "xfrm", "state", "add", "src", "198.18.0.1", "dst", "198.18.0.2", "proto", "esp",
           "spi", "0x100", "reqid", "0x4d57", "mode", "transport", "aead", "rfc4106(gcm(aes))", key, "128",
           check=False)
    sh("ip", "netns", "del", "ks-probe", check=False)
    return r.returncode == 0, r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--meshward", default="")
    ap.add_argument("--has-apply", default="0")
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--behaviour", default="", help="the test binary for the kernel behaviour suite ('' skips it)")
    ap.add_argument("--bench", default="", help="meshward-bench, for the SA install comparison ('' skips it)")
    ap.add_argument("--bench-sas", type=int, default=2000, help="SAs per method in the SA install comparison")
    ap.add_argument("--only", default="",
                    help="run only scenarios whose file name contains one of these (comma or space separated)")
    args = ap.parse_args()
    os.makedirs(args.results, exist_ok=True)
    boot = time.time()
    summary = {"kernel": os.uname().release, "started": boot, "results": [], "rate": args.rate}
    loaded, missing = load_modules()
    summary["modules_missing"] = missing
    ok, msg = esp_probe()
    summary["esp_ok"] = ok
    log(f"kernel {summary['kernel']}: modules missing {missing or 'none'}; rfc4106 SA {'ok' if ok else msg}")
    topo = topology()
    only = args.only.replace(",", " ").split()
    if args.meshward:
        t0 = time.time()
        args.meshward, args.libdir = stage_binary(args.meshward)
        log(f"meshward staged into tmpfs with its libraries ({time.time() - t0:.1f} s)")
    if ok and args.behaviour and (not only or any(o in BEHAVIOUR for o in only)):
        try:
            summary["results"].append(run_behaviour(args.behaviour, args.results))
        except Exception as e:
            res = {"scenario": BEHAVIOUR, "kernel": summary["kernel"], "status": "fail",
                   "reasons": [f"runner error: {e}"]}
            summary["results"].append(res)
            log(f"{BEHAVIOUR}: runner error: {e}")
    if ok and args.bench and (not only or any(o in BENCH for o in only)):
        try:
            summary["results"].append(run_bench(args.bench, args.results, args.bench_sas))
        except Exception as e:
            summary["results"].append({"scenario": BENCH, "kernel": summary["kernel"], "status": "fail",
                                       "reasons": [f"runner error: {e}"]})
            log(f"{BENCH}: runner error: {e}")
    if ok:
        for path in sorted(glob.glob(os.path.join(HERE, "scenarios", "[0-9]*.sh"))):
            if only and not any(o in os.path.basename(path) for o in only):
                continue
            try:
                res = run_scenario(path, args, topo, args.meshward, args.has_apply == "1", args.results)
            except Exception as e:  # a broken scenario must not hide the others
                name = os.path.basename(path)[:-3]
                res = {"scenario": name, "kernel": summary["kernel"], "status": "fail",
                       "reasons": [f"runner error: {e}"]}
                json.dump(res, open(os.path.join(args.results, f"{name}.json"), "w"), indent=1)
                log(f"{name}: runner error: {e}")
                teardown()
            summary["results"].append(res)
    summary["seconds"] = round(time.time() - boot, 1)
    with open(os.path.join(args.results, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    os.rename(os.path.join(args.results, "summary.json.tmp"), os.path.join(args.results, "summary.json"))
    log(f"done in {summary['seconds']} s")


if __name__ == "__main__":
    main()
