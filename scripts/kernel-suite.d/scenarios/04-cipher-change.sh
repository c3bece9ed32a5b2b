#!/usr/bin/env bash
# 04: changing defaults.cipher is a rekey of every channel (design.md section 4):
# aes-gcm-256 -> chacha20-poly1305 -> aes-cbc-hmac-sha256, under traffic, no loss.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 900
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
ks_spec "$SPEC" --cipher aes-gcm-256
mw apply "$SPEC"
ks_mark_pairs enforce "$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")"
ks_expect_algorithm 'rfc4106(gcm(aes))'
for change in "chacha20-poly1305:rfc7539esp(chacha20,poly1305)" "aes-cbc-hmac-sha256:cbc(aes)"; do
    cipher=${change%%:*} alg=${change#*:}
    before=$(ks_all_pinned_spis)
    ks_spec "$SPEC" --cipher "$cipher"
    rc=0
    mw plan "$SPEC" --detailed-exitcode || rc=$?
    [[ $rc -eq 2 ]] || ks_fail "plan after the cipher change exited $rc, expected 2"
    mw apply "$SPEC"
    ks_expect_converged "$SPEC"
    ks_expect_counts "web-1:2 app-1:6 db-1:4"
    ks_expect_algorithm "$alg"
    [[ $(ks_all_pinned_spis) != "$before" ]] || ks_fail "cipher change to $cipher kept the old SPIs"
    ks_log "$cipher: $(ks_all_pinned_spis)"
    sleep 2
done
