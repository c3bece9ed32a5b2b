#!/usr/bin/env bash
# 06: `meshward reconcile --interval 3s` as the long-running controller with a
# short rekey.every (20s): it must rotate every channel at least twice while
# traffic flows, lose nothing, and exit 0 on SIGTERM.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
ks_spec "$SPEC" --rekey-every 20s --drain 2s
mw apply "$SPEC"
ks_mark_pairs enforce "$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")"
"$MESHWARD" reconcile "$SPEC" --interval 3s --state-dir "$KS_STATE" >"$KS_WORK/reconcile.log" 2>&1 &
pid=$!
declare -A seen=()
for _ in $(seq 1 50); do
    sleep 2
    kill -0 "$pid" 2>/dev/null || { cat "$KS_WORK/reconcile.log"; ks_fail "reconcile exited early"; }
    seen["$(ks_pinned_spis app-1)"]=1
    [[ ${#seen[@]} -ge 3 ]] && break
done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
cat "$KS_WORK/reconcile.log"
[[ $rc -eq 0 ]] || ks_fail "reconcile exited $rc on SIGTERM, expected 0"
[[ ${#seen[@]} -ge 3 ]] || ks_fail "saw ${#seen[@]} generations of app-1's SPIs in 100 s, expected >= 3 (2 rekeys)"
ks_note generations_seen "${#seen[@]}"
mw apply "$SPEC"
ks_expect_counts "web-1:2 app-1:6 db-1:4"
