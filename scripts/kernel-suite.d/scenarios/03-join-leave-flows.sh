#!/usr/bin/env bash
# 03: fleet changes under traffic: web-2 joins (its traffic with app-1 goes from
# plaintext to ESP), the app-to-db flow is removed (ESP back to plaintext, the
# reverse order) and added again, web-2 leaves. Nothing may be lost at any step.
# ks-requires: meshward-apply
# ks-expect: clean
# ks-timeout: 900
source "$KS_LIB/scenario.sh"

SPEC=$KS_WORK/spec.yaml
step() { # NODES FLOWS COUNTS
    ks_spec "$SPEC" --nodes "$1" --flows "$2"
    mw apply "$SPEC"
    ks_expect_converged "$SPEC"
    ks_expect_counts "$3"
    sleep 2
}

ks_log "base: web-1 app-1 db-1"
step "web-1 app-1 db-1" "web-app app-db" "web-1:2 app-1:6 db-1:4 web-2:0"
ks_mark_pairs enforce "web-1~app-1/4 app-1~db-1/4 app-1~db-1/6"

ks_log "web-2 joins"
step "web-1 web-2 app-1 db-1" "web-app app-db" "web-1:2 web-2:2 app-1:8 db-1:4"
ks_mark_pairs enforce "web-2~app-1/4"

ks_log "flow app-to-db removed"
# 4 of the 8 channels go: exactly half, which apply allows without --force.
ks_mark_pairs relax "app-1~db-1/4 app-1~db-1/6"
step "web-1 web-2 app-1 db-1" "web-app" "web-1:2 web-2:2 app-1:4 db-1:0"

ks_log "flow app-to-db added again"
step "web-1 web-2 app-1 db-1" "web-app app-db" "web-1:2 web-2:2 app-1:8 db-1:4"
ks_mark_pairs enforce "app-1~db-1/4 app-1~db-1/6"

ks_log "web-2 leaves"
ks_mark_pairs relax "web-2~app-1/4"
step "web-1 app-1 db-1" "web-app app-db" "web-1:2 web-2:0 app-1:6 db-1:4"
