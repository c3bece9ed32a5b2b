#!/usr/bin/env bash
# 05: db-1 is "re-imaged": its kernel loses every SA and policy (and strongSwan
# puts its own state back). Until Meshward restores the channels with a NEW
# generation, app-1 <-> db-1 is down: that outage window is measured and reported.
# `reconcile --once` must restore everything in one cycle; losses are expected
# only inside the window, none at the end, and never plaintext while enforced.
# ks-requires: meshward-apply
# ks-expect: outage
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
ks_spec "$SPEC"
mw apply "$SPEC"
DB_PAIRS="app-1~db-1/4 app-1~db-1/6"
ks_mark_pairs enforce "web-1~app-1/4 $DB_PAIRS"
sleep 2
old_app=$(ks_pinned_spis app-1)
old_db=$(ks_pinned_spis db-1)

ks_log "re-image db-1: flush its SAs and policies"
ks_mark_pairs relax "$DB_PAIRS"
ks_now t_flush
x ip -n db-1 xfrm state flush
x ip -n db-1 xfrm policy flush
bash "$KS_LIB/foreign-state.sh" install db-1 "$KS_ADDR4_db_1" "$KS_ADDR6_db_1"
sleep 3

ks_log "reconcile --once"
ks_now t0
mw reconcile "$SPEC" --once
ks_now t1
ks_mark_pairs enforce "$DB_PAIRS"
ks_note reconcile_seconds "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")"
ks_note outage_window_seconds "$(awk "BEGIN { printf \"%.1f\", $t1 - $t_flush }")"
ks_expect_converged "$SPEC"
ks_expect_counts "web-1:2 app-1:6 db-1:4"
# Lost state is restored with a new generation, never the old keys.
for spi in $(ks_pinned_spis db-1); do
    [[ " $old_db " != *" $spi "* ]] || ks_fail "db-1 pins $spi again: old generation reinstalled"
done
new_app=$(ks_pinned_spis app-1)
[[ $new_app != "$old_app" ]] || ks_fail "app-1 -> db-1 still uses the pre-flush SPIs"
sleep 4 # the end of the stream must be clean
