#!/usr/bin/env python3
"""Compares, for one node behind an agent, three records of the same changes to its owned
XFRM objects (kernel-suite scenario 11):

- the kernel's own order: `ip -o xfrm monitor` run in the node's namespace (one line per
  netlink event, as the kernel multicast it);
- the order in which the controller's watch received them: the loop's JSON log, its
  `watch change` lines (debug) for the node, each with the agent's `watch.seq`;
- the order in which Meshward applied its operations to the node: the loop's `applied` lines.

Each change is reduced to (upsert|delete, object): an SA by its SPI, a policy by selector and
direction. The three lists must be equal, and the watch's seqs consecutive (a seq at or below
the last one is a replay after a resumed stream: it must repeat the change it had, and is
skipped). Prints the three lists side by side and exits 1 with the first difference.

usage: watch-order.py --node NODE --monitor FILE --monitor-from N --log FILE --from-line N --reqid DEC
       watch-order.py --restored --node NODE --log FILE --from-line N --since EPOCH --until EPOCH
"""

import argparse
import datetime
import json
import sys
import time


def tokens_after(words, name):
    """The word after the first `name` in `words`, or ''."""
    for i, word in enumerate(words[:-1]):
        if word == name:
            return words[i + 1]
    return ""


def policy_key(words):
    return "policy %s>%s dir %s" % (tokens_after(words, "src"), tokens_after(words, "dst"), tokens_after(words, "dir"))


def kernel_events(path, start, reqid):
    """(kind, object) for every event of an owned object that `ip -o xfrm monitor` printed after
    its first `start` lines."""
    events, other, lost = [], [], []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if number <= start:
                continue
            if "No buffer space available" in line:
                lost.append(line.strip())
                continue
            words = line.replace("\\", " ").split()
            if words and words[0].startswith("["):
                words = words[1:]  # the time `ip -ts` put before the event
            if not words or ("reqid %d" % reqid) not in " ".join(words):
                continue
            if words[0] in ("Async", "Flushed"):
                continue
            kind = "upsert"
            if words[0] == "Deleted":
                kind, words = "delete", words[1:]
            elif words[0] == "Updated":
                words = words[1:]
            elif words[0] == "Expired":
                # A hard expiry deletes the SA or policy; a soft one changes nothing.
                if "hard 1" not in " ".join(words):
                    continue
                kind, words = "delete", words[1:]
            if "tmpl" in words:
                events.append((kind, policy_key(words)))
            elif tokens_after(words, "spi"):
                events.append((kind, "sa " + tokens_after(words, "spi")))
            else:
                other.append(line.rstrip())
    return events, other, lost


def log_lines(path, start):
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if number <= start or not line.startswith("{"):
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue


def watch_events(path, start, node):
    """(kind, object) for each change the controller's watch received for `node`, in order,
    with the seqs checked; and the problems found."""
    events, problems, by_seq, last = [], [], {}, None
    for entry in log_lines(path, start):
        if entry.get("message") != "watch change" or entry.get("node") != node:
            continue
        seq = int(entry["watch.seq"])
        words = entry["watch.object"].split()
        key = policy_key(words) if words[0] == "policy" else "sa " + tokens_after(words, "spi")
        event = (entry["watch.change"], key)
        if last is not None and seq <= last:
            if by_seq.get(seq, event) != event:
                problems.append("seq %d came again with another change: %s, then %s" % (seq, by_seq[seq], event))
            continue
        if last is not None and seq != last + 1:
            problems.append("seq %d follows seq %d: a gap" % (seq, last))
        by_seq[seq] = event
        last = seq
        events.append(event)
    first = min(by_seq) if by_seq else None
    return events, problems, (first, last)


def applied_operations(path, start, node):
    """(kind, object) for each operation Meshward applied to `node`, in order."""
    events = []
    for entry in log_lines(path, start):
        if entry.get("message") != "applied" or entry.get("node") != node:
            continue
        operation = entry["operation"]
        kind_name, _, target = operation.partition(" ")
        words = target.split()
        kind = "delete" if kind_name.startswith("delete-") else "upsert"
        key = policy_key(words) if kind_name.endswith("-policy") else "sa " + tokens_after(words, "spi")
        events.append((kind, key))
    return events


def restored(args):
    """Prints the seconds from --since to the last operation the loop applied to --node before
    --until, and how many it applied: when a read at --until found the node as it was, that
    operation completed its restoration. The controller logs an operation once the agent has
    answered for it, after the kernel applied it: an upper bound of the kernel's moment."""
    times = []
    for entry in log_lines(args.log, args.from_line):
        if entry.get("message") != "applied" or entry.get("node") != args.node:
            continue
        stamp = datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        if args.since < stamp <= args.until:
            times.append(stamp)
    if not times:
        print("the loop applied nothing to %s between the change and the read that found it restored" % args.node,
              file=sys.stderr)
        return 1
    print("%.2f %d" % (max(times) - args.since, len(times)))
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--restored", action="store_true",
                        help="print when the node was restored (see restored()), and how many events it took")
    parser.add_argument("--since", type=float)
    parser.add_argument("--until", type=float)
    parser.add_argument("--node")
    parser.add_argument("--monitor")
    parser.add_argument("--log")
    parser.add_argument("--from-line", type=int, default=0, help="log lines written before the rekey")
    parser.add_argument("--monitor-from", type=int, default=0, help="monitor lines written before the rekey")
    parser.add_argument("--reqid", type=int, default=19799)
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the watch's last changes")
    args = parser.parse_args()
    if args.restored:
        return restored(args)

    kernel, unparsed, lost = kernel_events(args.monitor, args.monitor_from, args.reqid)
    # The watch's last changes may still be on their way to the controller.
    deadline = time.monotonic() + args.wait
    while True:
        watch, problems, seqs = watch_events(args.log, args.from_line, args.node)
        if len(watch) >= len(kernel) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    applied = applied_operations(args.log, args.from_line, args.node)

    def show(event):
        return "%s %s" % event if event else "-"

    print("%s: %d kernel events, %d watch changes (seq %s..%s), %d applied operations"
          % (args.node, len(kernel), len(watch), seqs[0], seqs[1], len(applied)))
    print("  %-3s %-62s %-62s %s" % ("#", "kernel (ip xfrm monitor)", "watch (controller, in seq order)", "applied"))
    for i in range(max(len(kernel), len(watch), len(applied))):
        row = [show(lst[i] if i < len(lst) else None) for lst in (kernel, watch, applied)]
        mark = "" if row[0] == row[1] == row[2] else "   <-- differs"
        print("  %-3d %-62s %-62s %s%s" % (i + 1, row[0], row[1], row[2], mark))
    if lost:
        problems.append("the monitor lost events (%s): the kernel's record is incomplete" % lost)
    for line in unparsed:
        problems.append("an owned event the check cannot read: %s" % line)
    if not kernel:
        problems.append("the kernel reported no change of an owned object")
    if watch != kernel:
        problems.append("the watch's changes differ from the kernel's events (order or content)")
    if applied != kernel:
        problems.append("the kernel's events differ from the operations Meshward applied")
    for problem in problems:
        print("%s: %s" % (args.node, problem))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
