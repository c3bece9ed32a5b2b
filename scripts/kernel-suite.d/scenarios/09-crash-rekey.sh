#!/usr/bin/env bash
# 09: the controller is killed (SIGKILL) at four points of `rekey --all` under traffic and
# started again (`apply`, which takes over the dead controller's lease at once and finishes
# the rotation it finds recorded). After every restart: nothing lost, no plaintext, every
# channel on a new SPI that was never used before, no orphaned SA or policy.
# The kill points are counted in kernel operations the killed controller had logged as
# applied when the signal went ("0": once it had issued the new generations, before any
# kernel operation). Operations reach a node in batches, so a point means "at least N".
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

for point in 0 4 12 24; do
    log=$KS_WORK/rekey-killed-$point.log
    before=$(ks_all_pinned_spis)
    ks_log "rekey --all, to be killed after $point applied operations"
    "$MESHWARD" rekey "$SPEC" --all --state-dir "$KS_STATE" >/dev/null 2>"$log" &
    pid=$!
    if [[ $point -eq 0 ]]; then
        until ! kill -0 "$pid" 2>/dev/null || grep -q 'issued generation' "$log"; do sleep 0.01; done
    else
        until ! kill -0 "$pid" 2>/dev/null || [[ $(grep -c '\] applied$\| applied$' "$log") -ge $point ]]; do
            sleep 0.01
        done
    fi
    kill -9 "$pid" 2>/dev/null || ks_log "the rekey had already finished"
    wait "$pid" 2>/dev/null || true
    ks_log "killed with $(grep -c ' applied$' "$log") operations applied"
    ks_note "kill_${point}_applied" "$(grep -c ' applied$' "$log")"
    mw apply "$SPEC"
    after=$(ks_all_pinned_spis)
    ks_log "after the restart: $before -> $after"
    for n in web-1 app-1 db-1; do
        for spi in $(ks_pinned_spis "$n"); do
            [[ $seen != *"$spi"* ]] || ks_fail "kill point $point: $n pins $spi, an SPI used before"
        done
    done
    seen+=" $after "
    ks_expect_counts "web-1:2 app-1:6 db-1:4 web-2:0"
    ks_expect_converged "$SPEC"
done
sleep 3 # the end of the stream must be clean
