#!/usr/bin/env bash
# Foreign IPsec state: what strongSwan or an operator leaves in a node's kernel.
# Meshward must never list-and-touch it (design.md section 3, "Ownership").
#
#   foreign-state.sh install  NODE ADDR4 [ADDR6]        install it in namespace NODE
#   foreign-state.sh snapshot NODE ADDR4 [ADDR6] FILE   save its `ip xfrm` text
#   foreign-state.sh verify   NODE ADDR4 [ADDR6] FILE   exit 1 and print a diff unless
#                                                       it is byte-for-byte unchanged
#
# The objects: an inbound and an outbound SA with reqid 0x1234 (strongSwan-style,
# peer 198.18.9.1), the two policies that use them, and a template-less IPv6
# policy (an operator's manual bypass, reqid 0). Their selectors name only the
# 198.18.9.0/24 and 2001:db8:9::/48 peers, which carry no test traffic, so they
# never affect the scenarios; the keys are fixed, not secret test values.
set -euo pipefail

cmd=$1 node=$2 addr4=$3 addr6=${4:-}
peer4=198.18.9.1
peer6=2001:db8:9::1
key_in=0x$(printf 'f0%.0s' {1..36})
key_out=0x$(printf '0f%.0s' {1..36})

install() {
    ip -n "$node" -batch - <<EOB
xfrm state add src $peer4 dst $addr4 proto esp spi 0xc0ffee01 reqid 0x1234 mode transport aead rfc4106(gcm(aes)) $key_in 128
xfrm state add src $addr4 dst $peer4 proto esp spi 0xc0ffee02 reqid 0x1234 mode transport aead rfc4106(gcm(aes)) $key_out 128
xfrm policy add src $addr4/32 dst $peer4/32 dir out priority 1000 tmpl src $addr4 dst $peer4 proto esp reqid 0x1234 mode transport
xfrm policy add src $peer4/32 dst $addr4/32 dir in priority 1000 tmpl src $peer4 dst $addr4 proto esp reqid 0x1234 mode transport
xfrm policy add src $peer6/128 dst ::/0 dir in priority 2000 action allow
EOB
}

# The foreign objects as `ip xfrm` prints them (every block that names a foreign
# peer), one block per object, sorted: the order of the kernel's dump is not theirs.
snapshot() {
    { ip -n "$node" xfrm state; ip -n "$node" xfrm policy; } | python3 -c '
import sys
blocks, cur = [], []
for line in sys.stdin.read().splitlines():
    if line and not line[0].isspace() and cur:
        blocks.append("\n".join(cur))
        cur = []
    if line:
        cur.append(line)
if cur:
    blocks.append("\n".join(cur))
mine = sorted(b for b in blocks if sys.argv[1] in b or sys.argv[2] in b)
sys.stdout.write("\n".join(mine) + "\n")
' "$peer4" "${peer6%::1}:"
}

case $cmd in
install) install ;;
snapshot) snapshot >"$5" ;;
verify)
    now=$(mktemp)
    snapshot >"$now"
    if cmp -s "$5" "$now"; then rm -f "$now"; exit 0; fi
    echo "foreign state on $node changed:"
    diff -u "$5" "$now" || true
    rm -f "$now"
    exit 1
    ;;
*) echo "usage: $0 install|snapshot|verify NODE ADDR4 [ADDR6] [FILE]" >&2; exit 2 ;;
esac
