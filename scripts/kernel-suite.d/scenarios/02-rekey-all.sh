#!/usr/bin/env bash
# 02: `meshward rekey --all` three times under traffic. Every channel's pinned SPI
# must change each time, old SAs must be gone after the drain, nothing lost.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 900
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
ks_spec "$SPEC"
mw apply "$SPEC"
ks_mark_pairs enforce "$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")"
ks_expect_converged "$SPEC"
seen=" $(ks_all_pinned_spis) "
for round in 1 2 3; do
    before=$(ks_all_pinned_spis)
    ks_now t0
    mw rekey "$SPEC" --all
    ks_now t1
    ks_note "rekey_${round}_seconds" "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")"
    # Whatever rekey left time-gated (the drain), a plain apply finishes.
    mw apply "$SPEC"
    after=$(ks_all_pinned_spis)
    ks_log "round $round: $before -> $after"
    ks_expect_fresh_spis "$seen" "round $round"
    seen+=" $after "
    ks_expect_counts "web-1:2 app-1:6 db-1:4 web-2:0"
    ks_expect_converged "$SPEC"
done
sleep 3
