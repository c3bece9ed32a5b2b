#!/usr/bin/env bash
# 07: foreign state (reqid 0x1234 SAs and policies, an operator's template-less
# policy: lib/foreign-state.sh, installed by the runner in every node before
# each scenario) survives apply, rekey and the removal of every flow
# byte-for-byte (the runner compares), Meshward never picks a foreign SPI, and
# nothing owned is left behind.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
ks_spec "$SPEC"
PAIRS=$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")
mw apply "$SPEC"
ks_mark_pairs enforce "$PAIRS"
mw rekey "$SPEC" --all
mw apply "$SPEC"
for n in $KS_NODES; do
    owned=$(ip -n "$n" xfrm state | grep -B1 "reqid $MESHWARD_REQID_DEC " || true)
    [[ ${owned,,} == *"spi 0xc0ffee0"* ]] && ks_fail "$n: Meshward used a foreign SPI"
done
ks_log "remove every flow"
ks_mark_pairs relax "$PAIRS"
ks_spec "$SPEC" --flows ""
# Removing every channel is more than half of them: apply refuses that without --force.
mw apply "$SPEC" --force
ks_expect_converged "$SPEC"
ks_expect_counts "web-1:0 web-2:0 app-1:0 db-1:0"
sleep 2
