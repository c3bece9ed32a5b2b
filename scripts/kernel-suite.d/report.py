#!/usr/bin/env python3
"""Meshward kernel suite: the results table, on the host.

usage: report.py RESULTS_DIR KVER [KVER...]
Reads RESULTS_DIR/KVER/summary.json (written by guest.py inside each boot),
prints one row per scenario and kernel, writes RESULTS_DIR/report.json and exits
1 if any scenario failed or a boot produced no summary. Standard library only.
"""

import glob
import json
import os
import sys


def moved_text(counters):
    """Every /proc/net/xfrm_stat counter (and UDP receive-buffer drop) that moved, per namespace."""
    if not counters:
        return "-"
    parts = []
    for ns in sorted(counters):
        c = counters[ns]
        if "error" in c:
            parts.append(f"{ns}:{c['error']}")
            continue
        for k in sorted(c):
            parts.append(f"{ns}:{k}+{c[k]}")
    return " ".join(parts) if parts else "-"


def main():
    root, kvers = sys.argv[1], sys.argv[2:]
    rows, failed, problems, extras = [], False, [], []
    report = {"kernels": {}}
    for kver in kvers:
        path = os.path.join(root, kver, "summary.json")
        try:
            summary = json.load(open(path))
        except (OSError, ValueError):
            failed = True
            problems.append(f"{kver}: the boot did not complete (crash or boot time limit); "
                            f"see {root}/{kver}/console.log")
            # Show what did finish before the boot ended.
            done = []
            for f in sorted(glob.glob(os.path.join(root, kver, "[0-9]*.json"))):
                try:
                    done.append(json.load(open(f)))
                except (OSError, ValueError):
                    pass
            summary = {"kernel": kver, "results": done, "esp_ok": True, "incomplete": True}
        report["kernels"][kver] = summary
        if not summary.get("esp_ok"):
            failed = True
            problems.append(f"{kver}: rfc4106 SA could not be installed (modules missing: "
                            f"{summary.get('modules_missing')})")
        for r in summary["results"]:
            if r.get("scenario") == "netlink-sa-bench" and (r.get("notes") or {}).get("table"):
                extras.append(f"{summary['kernel']}:")
                extras.extend("  " + line for line in r["notes"]["table"])
            t = r.get("totals") or {}
            status = r.get("status", "fail")
            if status == "fail":
                failed = True
                for reason in r.get("reasons", []):
                    problems.append(f"{r['scenario']} on {kver}: {reason}")
                for test in r.get("failed_tests", [])[:20]:
                    problems.append(f"{r['scenario']} on {kver}: {test}")
            shown = status if status != "skipped" else "skipped: meshward lacks apply"
            rows.append([r["scenario"], summary["kernel"], shown,
                         str(t.get("sent", "-")), str(t.get("received", "-")), str(t.get("lost", "-")),
                         str(t.get("duplicates", "-")), str(t.get("plaintext_after_enforcement", "-")),
                         str(round(t["max_gap_ms"])) if t.get("max_gap_ms") is not None else "-",
                         str(r.get("scenario_seconds", "-")),
                         moved_text(r.get("counters_moved"))])
    head = ["scenario", "kernel", "result", "sent", "received", "lost", "dup", "plain-after-enf", "max-gap-ms",
            "secs", "xfrm_stat moved (namespace:counter+delta)"]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    widths[-1] = len(head[-1])
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if extras:
        print()
        print("SA install comparison (meshward-bench netlink --objects sas; emulated guest, compare the ratio):")
        for line in extras:
            print(line)
    if problems:
        print()
        for p in problems:
            print(f"FAIL {p}")
    report["failed"] = failed
    try:
        with open(os.path.join(root, "report.json"), "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    except OSError as e:
        print(f"cannot write report.json: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
