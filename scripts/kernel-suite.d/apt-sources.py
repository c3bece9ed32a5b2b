#!/usr/bin/env python3
"""Meshward kernel suite: the private apt sources, built from the machine's own.

usage: apt-sources.py --release CODENAME --source-list FILE --source-parts DIR --out FILE

Reads the apt sources this machine is configured with (the one-line FILE, and every
*.list and *.sources file in DIR, as `apt-config` names them), keeps the binary (`deb`)
entries of the machine's Debian release family (suites named after its codename:
CODENAME, CODENAME-updates, CODENAME-security, CODENAME-backports, ...), moves them to
--release when the machine runs another release, adds RELEASE-backports to every URI that
carries RELEASE but no backports suite, and writes the result as one deb822 file.

The repository therefore names no package mirror: the suite follows whatever mirror,
proxy or snapshot the machine uses. Options of each entry (Signed-By, inline keys,
Architectures, Trusted, ...) are kept as written. Exits 1 with a message when the machine
has no entry that serves RELEASE. Standard library only.
"""

import argparse
import glob
import os
import re
import sys

# One-line option names (sources.list(5)) and their deb822 field names.
ONE_LINE_OPTIONS = {
    "arch": "Architectures",
    "lang": "Languages",
    "target": "Targets",
    "pdiffs": "PDiffs",
    "by-hash": "By-Hash",
    "allow-insecure": "Allow-Insecure",
    "allow-weak": "Allow-Weak",
    "allow-downgrade-to-insecure": "Allow-Downgrade-To-Insecure",
    "trusted": "Trusted",
    "signed-by": "Signed-By",
    "check-valid-until": "Check-Valid-Until",
    "valid-until-min": "Valid-Until-Min",
    "valid-until-max": "Valid-Until-Max",
    "check-date": "Check-Date",
    "date-max-future": "Date-Max-Future",
    "inrelease-path": "InRelease-Path",
    "snapshot": "Snapshot",
}
# Fields that the writer produces itself; every other field of an entry is copied.
STRUCTURAL = {"types", "uris", "suites", "components", "enabled"}


class SourcesError(Exception):
    pass


class Entry:
    """One source: URIs x suites x components, with its options as deb822 fields."""

    def __init__(self, origin, uris, suites, components, options):
        self.origin = origin
        self.uris = uris
        self.suites = suites
        self.components = components
        # [(field name, raw value)]; a raw value may span continuation lines.
        self.options = options


def deb822_field_name(key):
    """The deb822 spelling of a one-line option, `key+=`/`key-=` as `Field-Add`/`Field-Remove`."""
    suffix = ""
    if key.endswith("+"):
        key, suffix = key[:-1], "-Add"
    elif key.endswith("-"):
        key, suffix = key[:-1], "-Remove"
    name = ONE_LINE_OPTIONS.get(key.lower())
    if name is None:
        name = "-".join(part.capitalize() for part in key.split("-"))
    return name + suffix


def parse_one_line(path):
    """sources.list(5) one-line style: `deb [opt=val ...] URI SUITE [COMPONENT...]`."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            kind, _, rest = line.partition(" ")
            if kind != "deb":
                continue  # deb-src, or something apt itself would reject
            options = []
            rest = rest.strip()
            if rest.startswith("["):
                end = rest.find("]")
                if end < 0:
                    raise SourcesError(f"{path}:{number}: unterminated option list")
                for option in rest[1:end].split():
                    key, sep, value = option.partition("=")
                    if not sep:
                        raise SourcesError(f"{path}:{number}: option {option!r} has no value")
                    value = " ".join(value.split(","))
                    options.append((deb822_field_name(key), value))
                rest = rest[end + 1 :]
            words = rest.split()
            if len(words) < 2:
                raise SourcesError(f"{path}:{number}: expected a URI and a suite")
            entries.append(Entry(f"{path}:{number}", [words[0]], [words[1]], words[2:], options))
    return entries


def parse_deb822(path):
    """sources.list(5) deb822 style: stanzas of fields, separated by blank lines."""
    entries = []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stanza, start = [], 1
    lines = text.split("\n") + [""]
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            continue
        if line.strip() == "":
            if stanza:
                entry = stanza_entry(path, start, stanza)
                if entry is not None:
                    entries.append(entry)
            stanza, start = [], number + 1
            continue
        if line[0] in " \t":
            if not stanza:
                raise SourcesError(f"{path}:{number}: continuation line outside a field")
            name, value = stanza[-1]
            stanza[-1] = (name, value + "\n" + line)
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise SourcesError(f"{path}:{number}: expected `Field: value`")
        stanza.append((name.strip(), value.strip()))
    return entries


def stanza_entry(path, start, stanza):
    fields = {name.lower(): value for name, value in stanza}
    if fields.get("enabled", "yes").strip().lower() == "no":
        return None
    if "deb" not in fields.get("types", "").split():
        return None
    uris = fields.get("uris", "").split()
    suites = fields.get("suites", "").split()
    if not uris or not suites:
        raise SourcesError(f"{path}:{start}: a stanza needs URIs and Suites")
    options = [(name, value) for name, value in stanza if name.lower() not in STRUCTURAL]
    return Entry(f"{path}:{start}", uris, suites, fields.get("components", "").split(), options)


def machine_entries(source_list, source_parts):
    """Every enabled binary entry, in the order apt reads them."""
    entries = []
    if source_list and os.path.isfile(source_list):
        entries += parse_one_line(source_list)
    if source_parts and os.path.isdir(source_parts):
        for path in sorted(glob.glob(os.path.join(source_parts, "*"))):
            if path.endswith(".list"):
                entries += parse_one_line(path)
            elif path.endswith(".sources"):
                entries += parse_deb822(path)
    return entries


def host_codename():
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "VERSION_CODENAME":
                    return value.strip().strip("\"'")
    except OSError:
        pass
    return None


def private_entries(entries, release, codename):
    """The entries of the machine's release family, moved to `release`, with backports added."""
    family = re.compile(r"^" + re.escape(codename) + r"(-[a-z0-9-]+)?$") if codename else None
    kept = []
    for entry in entries:
        if family is None or any(uri.startswith("cdrom:") for uri in entry.uris):
            continue
        suites = [release + (family.match(s).group(1) or "") for s in entry.suites if family.match(s)]
        if suites:
            kept.append(Entry(entry.origin, entry.uris, list(dict.fromkeys(suites)), entry.components, entry.options))
    backports = release + "-backports"
    with_backports = {uri for e in kept if backports in e.suites for uri in e.uris}
    for entry in kept:
        if release in entry.suites and not all(uri in with_backports for uri in entry.uris):
            entry.suites.append(backports)
            with_backports.update(entry.uris)
    if not any(release in e.suites for e in kept):
        raise SourcesError(
            f"the machine's apt sources have no entry for Debian {codename or '(unknown release)'}"
            f" that could serve {release}; add one (e.g. in /etc/apt/sources.list.d/) and run again"
        )
    return kept


def deb822_text(entries):
    out = []
    for entry in entries:
        out.append(f"# from {entry.origin}")
        out.append("Types: deb")
        out.append("URIs: " + " ".join(entry.uris))
        out.append("Suites: " + " ".join(entry.suites))
        if entry.components:
            out.append("Components: " + " ".join(entry.components))
        for name, value in entry.options:
            out.append(f"{name}:{value}" if value.startswith("\n") else f"{name}: {value}")
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", required=True)
    parser.add_argument("--source-list", default="/etc/apt/sources.list")
    parser.add_argument("--source-parts", default="/etc/apt/sources.list.d")
    parser.add_argument("--codename", default=None, help="the machine's release (default: /etc/os-release)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        entries = private_entries(
            machine_entries(args.source_list, args.source_parts), args.release, args.codename or host_codename()
        )
    except (SourcesError, OSError, UnicodeDecodeError) as error:
        print(f"apt-sources: {error}", file=sys.stderr)
        return 1
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(deb822_text(entries))
    os.replace(tmp, args.out)
    for entry in entries:
        print(f"apt-sources: {' '.join(entry.uris)}: {' '.join(entry.suites)} (from {entry.origin})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
