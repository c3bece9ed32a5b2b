#!/usr/bin/env bash
# 01: `meshward apply` of the three-tier spec (web -> app -> db, IPv4 web tier,
# dual-stack app and db) onto namespaces with traffic already flowing in
# plaintext; then `plan --detailed-exitcode` must report nothing to change.
# Zero loss, nothing in plaintext once apply has returned, no drop counter.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

SPEC=$KS_SPECS/three-tier.yaml
mw validate "$SPEC"
rc=0
mw plan "$SPEC" --detailed-exitcode || rc=$?
[[ $rc -eq 2 ]] || ks_fail "plan before apply exited $rc, expected 2 (changes pending)"
ks_now t0
mw apply "$SPEC"
ks_now t1
ks_mark_pairs enforce "$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")"
ks_note apply_seconds "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")"
ks_expect_converged "$SPEC"
# One SA and one policy per channel end: web-1~app-1/4, app-1~db-1/4, app-1~db-1/6.
ks_expect_counts "web-1:2 app-1:6 db-1:4 web-2:0"
ks_expect_algorithm 'rfc4106(gcm(aes))'
# A second apply changes nothing in the kernels.
before=$(ks_all_pinned_spis)
mw apply "$SPEC"
[[ $(ks_all_pinned_spis) == "$before" ]] || ks_fail "a second apply changed pinned SPIs"
ks_log "pinned: $before"
sleep 3
