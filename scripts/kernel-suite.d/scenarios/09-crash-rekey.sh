#!/usr/bin/env bash
# 09: the controller is killed (SIGKILL) at points of `rekey --all` under traffic and
# started again (`apply`, which takes over the dead controller's lease at once and finishes
# the rotation it finds recorded). After every restart: nothing lost, no plaintext, every
# channel on a new SPI that was never used before, no orphaned SA or policy.
# The kill points are counted in kernel operations the killed controller had logged as
# applied when the signal went ("0": once it had issued the new generations, before any
# kernel operation). Each node gets a pass's operations as one batch and the kill lands a few
# milliseconds after the line, so a point means "at least N"; the notes record the count.
# The last point, 21, falls in the pass that deletes the old outbound SAs (operations 19-24),
# before the drain: a point in the final pass (25-30) races the controller's own exit, which
# follows its last operation within milliseconds.
# The five points are shared between the two kernels, each boot killing at its own: 0, 9 and
# 21 on 6.1, 3 and 15 on 6.12 (every point costs about 30 s of an emulated boot; the kill is
# the controller's, and every scenario beside this one runs the same staging on both kernels).
# KS_KILL_POINTS="0 3 9 15 21" runs all of them on any kernel.
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

case $(uname -r) in
6.1.*) points=${KS_KILL_POINTS:-0 9 21} ;;
*) points=${KS_KILL_POINTS:-3 15} ;;
esac
ks_note kill_points "$points"
for point in $points; do
    log=$KS_WORK/rekey-killed-$point.log
    before=$(ks_all_pinned_spis)
    ks_log "rekey --all, to be killed after $point applied operations"
    "$MESHWARD" rekey "$SPEC" --all --state-dir "$KS_STATE" >/dev/null 2>"$log" &
    pid=$!
    # Follow the log line by line and kill the moment the point's line is written (or stop
    # following once the rekey has ended by itself).
    if [[ $point -eq 0 ]]; then
        pattern='*issued generation*' count=1
    else
        pattern="$KS_APPLIED_LINE" count=$point
    fi
    seen_lines=0
    while true; do
        if IFS= read -r -t 1 line; then
            # shellcheck disable=SC2053 # the pattern is a glob on purpose
            [[ $line == $pattern ]] && ((++seen_lines >= count)) && break
        elif ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
    done < <(exec timeout 600 tail -n +1 -f "$log" 2>/dev/null)
    follower=$!
    # A rekey that ended before its kill point tests nothing: fail rather than pass hollow.
    kill -9 "$pid" 2>/dev/null || ks_fail "kill point $point: the rekey had ended before it (log format changed?)"
    kill "$follower" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    applied=$(ks_count_applied "$log")
    ks_log "killed with $applied operations applied"
    ks_note "kill_${point}_applied" "$applied"
    [[ $applied -ge $point ]] || ks_fail "kill point $point: killed with only $applied operations applied"
    mw apply "$SPEC"
    after=$(ks_all_pinned_spis)
    ks_log "after the restart: $before -> $after"
    ks_expect_fresh_spis "$seen" "kill point $point"
    seen+=" $after "
    ks_expect_counts "web-1:2 app-1:6 db-1:4 web-2:0"
    ks_expect_converged "$SPEC"
done
sleep 3 # the end of the stream must be clean
