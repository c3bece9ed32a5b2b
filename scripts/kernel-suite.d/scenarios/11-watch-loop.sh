#!/usr/bin/env bash
# 11: the watch wakes a running loop (design.md §12). web-1 and db-1 run `meshward agent run`
# in their namespaces, the controller runs on app-1 (`endpoint: local`) as `meshward reconcile
# --interval 10m`, so no cycle of the interval comes during the scenario: only the watch can
# start one. Under traffic on every pair, web-1's SAs and policies are flushed by hand (`ip xfrm
# state flush; ip xfrm policy flush`) and db-1's inbound IPv6 policy from app-1 is deleted by hand,
# one right after the other. Both hosts must be back to what they held (owned SAs counted, owned
# policies by selector, direction and level; polled) within 10 s of their own change: the moment
# is the loop's last operation applied to the node before the poll that read it back (notes
# restore_web_1_seconds, restore_db_1_seconds; the poll's own bound in *_polled_seconds), and the
# loop's log must show the watch saw both changes and a drift woke the loop. web-1~app-1 is in
# plaintext and loses packets in that window (ks-outage-pairs); app-1~db-1 loses nothing (an
# inbound policy gone lets ESP and plaintext in alike) and nothing moves a counter on db-1. Then
# the loop rekeys every channel under traffic (the spec's rekey.every lowered to 20s once every
# generation is older, then raised again once the drain is over), while `ip -ts -o xfrm monitor SA
# policy expire` records the kernel's own events in web-1 and db-1: for each, the changes the
# controller's watch received (its `watch change` lines, debug) must be exactly the kernel's
# events in the kernel's order, with consecutive seqs, and both must be the operations Meshward
# applied to that node, in order (lib/watch-order.py).
# ks-requires: meshward-apply
# ks-expect: outage
# ks-outage-pairs: web-1~app-1/4
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

CONTROLLER_HOST=app-1
AGENT_NODES="web-1 db-1"
RESTORE_LIMIT=10
# rekey.every for the loop's rekey (see below).
REKEY_EVERY=20
LOOP_LOG=$KS_WORK/reconcile.log

declare -A AGENT_PID=()
LOOP_PID=""
declare -a MONITOR_PIDS=()
# start_agent NODE: `meshward agent run` inside NODE's namespace, until it listens.
start_agent() {
    local node=$1 log=$KS_WORK/mwagent-$1.log
    printf '[%(%T)T] + ip netns exec %s meshward agent run --agent-dir %s --listen %s:7443\n' -1 \
        "$node" "$KS_WORK/agent-dir-$node" "$(ks_addr "$node" 4)"
    ip netns exec "$node" "$MESHWARD" agent run --agent-dir "$KS_WORK/agent-dir-$node" \
        --listen "$(ks_addr "$node" 4):7443" >>"$log" 2>&1 &
    AGENT_PID[$node]=$!
    local waited=0
    until grep -q "agent listening" "$log" 2>/dev/null; do
        kill -0 "${AGENT_PID[$node]}" 2>/dev/null || ks_fail "the agent of $node exited: $(tail -5 "$log")"
        ((++waited <= 600)) || ks_fail "the agent of $node did not listen within 60 s"
        sleep 0.1
    done
    ks_log "agent of $node listening (pid ${AGENT_PID[$node]})"
}
cleanup() {
    local pid
    for pid in "${MONITOR_PIDS[@]}" $LOOP_PID "${AGENT_PID[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# write_spec EVERY: the spec, rekey.every EVERY, web-1 and db-1 behind agents, app-1 local. It is
# written beside and renamed into place, so the loop's spec watcher sees one change.
SPEC=$KS_WORK/spec/spec.yaml
mkdir -p "$KS_WORK/spec"
write_spec() {
    ks_spec "$KS_WORK/spec.next" --rekey-every "$1"
    sed -i -e "s/endpoint: netns:$CONTROLLER_HOST\$/endpoint: local/" \
        -e 's/endpoint: netns:web-1$/endpoint: agent/' -e 's/endpoint: netns:db-1$/endpoint: agent/' "$KS_WORK/spec.next"
    ! grep -q "endpoint: netns" "$KS_WORK/spec.next" || ks_fail "spec still names a netns endpoint"
    mv "$KS_WORK/spec.next" "$SPEC"
}

# A wait without a process: `read -t` on a pipe nobody writes to.
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

# owned_state: one line per agent node, "NODE sas=N POLICY...": its owned SAs counted (as
# ks_owned_sa_count does) and its owned policies by selector, direction and level ("/use" for an
# optional template), sorted. Two `ip` per node (`ip -batch` stops after an `xfrm ... list`) and
# one awk for all: this is polled.
owned_state() {
    local node
    for node in $AGENT_NODES; do
        echo "== $node state"
        ip -n "$node" xfrm state list
        echo "== $node policy"
        ip -n "$node" xfrm policy list
    done | awk -v r="reqid $MESHWARD_REQID_DEC " '
        function policy_end() {
            if (owned) keys[++np] = src ">" dst "/" dir (use ? "/use" : "")
            owned = 0; use = 0
        }
        function out(   i, j, k, line) {
            policy_end()
            if (node == "") return
            for (i = 2; i <= np; i++) for (j = i; j > 1 && keys[j - 1] > keys[j]; j--) { k = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = k }
            line = node " sas=" nsa
            for (i = 1; i <= np; i++) line = line " " keys[i]
            print line
        }
        /^== / { if ($3 == "state") { out(); node = $2; nsa = 0; np = 0 } else { policy_end() } what = $3; next }
        what == "state" { if (index($0, r)) nsa++; next }
        /^[^ \t]/ { policy_end(); src = $2; dst = $4; next }
        $1 == "dir" { dir = $2 }
        index($0, r) { owned = 1 }
        /level use/ { use = 1 }
        END { out() }'
}

# cycles_done: how many cycles the loop has ended so far.
cycles_done() { grep -c '"message":"cycle done"' "$LOOP_LOG" || true; }
# wait_cycle N WHAT: waits (60 s at most) until the loop has ended more than N cycles.
wait_cycle() {
    local deadline=$((${EPOCHREALTIME/./} + 60000000))
    until (($(cycles_done) > $1)); do
        kill -0 "$LOOP_PID" 2>/dev/null || ks_fail "the loop exited: $(tail -5 "$LOOP_LOG")"
        ((${EPOCHREALTIME/./} < deadline)) || ks_fail "no cycle of the loop ended within 60 s after $2"
        nap 0.2
    done
}

# wait_quiet: waits (30 s at most) until the loop's last cycle has ended and nothing (an applied
# operation, a wake, a cycle's end) follows it for 1.5 s.
wait_quiet() {
    local pattern='"message":"(applied|cycle done|[^"]*; reloading)"' before deadline=$((${EPOCHREALTIME/./} + 30000000))
    while ((${EPOCHREALTIME/./} < deadline)); do
        before=$(grep -c -E "$pattern" "$LOOP_LOG" || true)
        nap 1.5
        [[ $(grep -c -E "$pattern" "$LOOP_LOG" || true) -eq $before &&
            $(grep -E "$pattern" "$LOOP_LOG" | tail -1) == *'"message":"cycle done"'* ]] && return 0
    done
    ks_fail "the loop did not come to rest within 30 s"
}

write_spec 24h
for node in $AGENT_NODES; do
    mw agent credentials "$SPEC" --node "$node" --out "$KS_WORK/agent-dir-$node"
    start_agent "$node"
done

ks_log "apply through the agents"
# Run again (three runs at most) when it failed only because an agent did not answer within the
# controller's deadline: the first requests to an agent pay a debug build's cold start in the
# emulated guest (as in 10). The note late_first_contact_apply counts the runs it took.
for attempt in 1 2 3; do
    printf '[%(%T)T] + ip netns exec %s meshward apply %s --state-dir $KS_STATE\n' -1 "$CONTROLLER_HOST" "$SPEC"
    rc=0
    out=$(ip netns exec "$CONTROLLER_HOST" "$MESHWARD" apply "$SPEC" --state-dir "$KS_STATE" 2>&1) || rc=$?
    printf '%s\n' "$out"
    [[ $rc -eq 1 && $out == *"did not answer before its deadline"* && $attempt -lt 3 ]] || break
    ks_log "an agent missed the deadline of its first contact (run $attempt of apply): again"
done
[[ $rc -eq 0 ]] || ks_fail "apply from $CONTROLLER_HOST exited $rc"
ks_note late_first_contact_apply "$((attempt - 1))"
ALL_PAIRS=$(ks_spec_pairs "web-1 app-1 db-1" "web-app app-db")
ks_mark_pairs enforce "$ALL_PAIRS"
ks_expect_counts "web-1:2 app-1:6 db-1:4"

ks_log "the loop: reconcile --interval 10m on $CONTROLLER_HOST (debug log, JSON lines)"
printf '[%(%T)T] + ip netns exec %s meshward reconcile %s --interval 10m --log-format json --state-dir $KS_STATE\n' -1 \
    "$CONTROLLER_HOST" "$SPEC"
MESHWARD_LOG_LEVEL=debug ip netns exec "$CONTROLLER_HOST" "$MESHWARD" reconcile "$SPEC" --interval 10m \
    --log-format json --state-dir "$KS_STATE" >"$KS_WORK/reconcile.out" 2>"$LOOP_LOG" &
LOOP_PID=$!
wait_cycle 0 "the loop's start"
# Its first cycle read every node and opened a watch stream to each agent; a stream opens once
# the cycle has made the agent's connection (retried after 1 s, then 2 s): let both open.
sleep 3
grep -q '"message":"cycle done".*"operations":"0"' "$LOOP_LOG" ||
    ks_fail "the loop's first cycle changed something after apply: $(grep '"cycle done"' "$LOOP_LOG")"

# ------------------------------------------------------------------ drift, restored by the watch
declare -A BEFORE=() AFTER=()
while read -r node state; do BEFORE[$node]=$state; done < <(owned_state)
for node in $AGENT_NODES; do ks_log "owned on $node: ${BEFORE[$node]}"; done
read -ra web_words <<<"${BEFORE[web-1]}"
read -ra db_words <<<"${BEFORE[db-1]}"
[[ ${web_words[0]} == sas=2 && ${#web_words[@]} -eq 3 && ${db_words[0]} == sas=4 && ${#db_words[@]} -eq 5 ]] ||
    ks_fail "unexpected owned state before the drift: web-1 ${BEFORE[web-1]}, db-1 ${BEFORE[db-1]}"
cycles=$(cycles_done)
# Each stream's first snapshot is taken as drift too (the loop's start shows it): only the log
# written from here on counts.
drift_from=$(wc -l <"$LOOP_LOG")
a6_app=$(ks_addr app-1 6)
a6_db=$(ks_addr db-1 6)

# The kernel's own record of every change from here on: `ip xfrm monitor` in each agent's
# namespace, each event on one line behind the time it arrived (`-ts`). Subscribed to the SA,
# policy and expire groups only, as the agent is: a subscriber to XFRMNLGRP_AEVENTS makes the
# kernel send a replay update for every ESN SA under traffic, which overflowed the monitor's socket
# (ENOBUFS, events lost) in the emulated guest.
for node in $AGENT_NODES; do
    stdbuf -oL ip -ts -o -n "$node" xfrm monitor SA policy expire >"$KS_WORK/monitor-$node.log" 2>&1 &
    MONITOR_PIDS+=($!)
done
sleep 0.5

ks_log "by hand: flush web-1's SAs and policies, delete db-1's inbound IPv6 policy from app-1"
# web-1's policies go with the flush: its packets to app-1 leave in plaintext until the restore.
ks_mark_pairs relax "web-1~app-1/4"
# Times in microseconds (EPOCHREALTIME without its point), so the poll starts no process for them.
declare -A CHANGED_AT=()
ks_q web-1 xfrm state flush
ks_q web-1 xfrm policy flush
CHANGED_AT[web-1]=${EPOCHREALTIME/./}
ks_flush
CHANGED_AT[db-1]=${EPOCHREALTIME/./}
x ip -n db-1 xfrm policy delete src "$a6_app/128" dst "$a6_db/128" dir in
declare -A RESTORED=()
polls=0
t_poll0=${EPOCHREALTIME/./}
while ((${#RESTORED[@]} < 2)); do
    mapfile -t states < <(owned_state)
    # Taken once the poll has read both kernels: an upper bound of the moment of the restore.
    t=${EPOCHREALTIME/./}
    for line in "${states[@]}"; do
        node=${line%% *}
        [[ -v "RESTORED[$node]" ]] && continue
        AFTER[$node]=${line#* }
        [[ ${AFTER[$node]} == "${BEFORE[$node]}" ]] && RESTORED[$node]=$((t - ${CHANGED_AT[$node]}))
    done
    ((++polls))
    ((t - ${CHANGED_AT[web-1]} <= 3 * RESTORE_LIMIT * 1000000)) || break
    nap 0.1
done
ks_note poll_interval_ms "$(((${EPOCHREALTIME/./} - t_poll0) / 1000 / polls))"
ks_mark_pairs enforce "web-1~app-1/4"
declare -A RESTORE_S=()
for node in $AGENT_NODES; do
    ks_log "owned on $node after: ${AFTER[$node]}"
    [[ -v "RESTORED[$node]" ]] ||
        ks_fail "$node was not restored within $((3 * RESTORE_LIMIT)) s (it holds ${AFTER[$node]}, it held ${BEFORE[$node]})"
    # The poll bounds the moment from above by its period, which process starts make long in a
    # loaded emulated guest (seconds); the loop's log dates it: its last operation applied to the
    # node before that read (logged once the agent answered, after its kernel applied it).
    since=${CHANGED_AT[$node]}
    until=$((since + RESTORED[$node]))
    read -r seconds events < <(python3 "$KS_LIB/watch-order.py" --restored --node "$node" --log "$LOOP_LOG" \
        --from-line "$drift_from" --since "${since:0:-6}.${since: -6}" --until "${until:0:-6}.${until: -6}")
    RESTORE_S[$node]=$seconds
    polled=$(printf '%d.%02d' $((RESTORED[$node] / 1000000)) $((RESTORED[$node] % 1000000 / 10000)))
    ks_note "restore_${node//-/_}_seconds" "$seconds"
    ks_note "restore_${node//-/_}_polled_seconds" "$polled"
    ks_note "restore_${node//-/_}_operations" "$events"
    ks_log "$node restored $seconds s after its change ($events operations applied; read back by the poll at $polled s, $polls polls)"
done
bash "$KS_LIB/foreign-state.sh" install web-1 "$KS_ADDR4_web_1"
for node in $AGENT_NODES; do
    awk "BEGIN { exit !(${RESTORE_S[$node]} <= $RESTORE_LIMIT) }" ||
        ks_fail "$node was restored ${RESTORE_S[$node]} s after its change (at most $RESTORE_LIMIT s)"
done
# The restore's cycles must be over before the rekey starts.
wait_cycle "$cycles" "the drift"
wait_quiet
# The watch saw both changes (FleetWatch's `drift seen by the watch`), and a drift woke the loop
# (`... ; reloading`: the interval did not). A drift seen during a cycle wakes the loop once that
# cycle ends, which may already have restored its node (planned on the cache, which had it).
drift_log=$(tail -n +"$((drift_from + 1))" "$LOOP_LOG")
for node in $AGENT_NODES; do
    [[ $drift_log == *"\"message\":\"drift seen by the watch\",\"node\":\"$node\""* ]] ||
        ks_fail "the loop's log does not say the watch saw the drift on $node"
done
[[ $drift_log == *"\"message\":\"drift seen by the watch on node web-1; reloading\""* ]] ||
    ks_fail "the loop's log does not say the watch's drift on web-1 woke it"
ks_expect_counts "web-1:2 app-1:6 db-1:4"
ks_note cycles_for_the_drift "$(($(cycles_done) - cycles))"
web_policies=$(ip -n web-1 xfrm policy list)
if [[ $web_policies == *"proto tcp dport 7443"* ]]; then
    ks_note agent_port_exemption_after_flush 1
else
    ks_note agent_port_exemption_after_flush 0
    ks_log "web-1's agent did not put its port's exemption back in the SPD after the flush"
fi
ks_xfrm_counters "after the restore"

# ------------------------------------------------------- a rekey, the kernel's order vs the watch's
ks_log "the loop rekeys every channel: ip -o xfrm monitor in web-1 and db-1 records the kernel's order"
declare -A MONITOR_FROM=()
for node in $AGENT_NODES; do MONITOR_FROM[$node]=$(wc -l <"$KS_WORK/monitor-$node.log"); done
log_from=$(wc -l <"$LOOP_LOG")
cycles=$(cycles_done)
seen=" $(ks_all_pinned_spis) "
# rekey.every must exceed the time the rekey takes (a cycle runs passes until only drain waits
# remain: with a shorter one, generations come due again within the cycle and it never ends) and
# be below the age of every channel's generation: web-1's are the restore's, so wait for them.
restored_at=$((${CHANGED_AT[web-1]} + ${RESTORED[web-1]}))
wait_us=$((restored_at + (REKEY_EVERY + 1) * 1000000 - ${EPOCHREALTIME/./}))
((wait_us <= 0)) || nap "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
write_spec "${REKEY_EVERY}s"
wait_cycle "$cycles" "rekey.every lowered to ${REKEY_EVERY}s"
ks_log "rekey cycle done; the drain (2s) runs out before rekey.every goes back to 24h"
sleep 3
cycles=$(cycles_done)
write_spec 24h
wait_cycle "$cycles" "rekey.every raised to 24h"
ks_expect_fresh_spis "$seen" "the loop's rekey"
ks_expect_counts "web-1:2 app-1:6 db-1:4"
sleep 1
for pid in "${MONITOR_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
MONITOR_PIDS=()
for node in $AGENT_NODES; do
    rc=0
    python3 "$KS_LIB/watch-order.py" --node "$node" --monitor "$KS_WORK/monitor-$node.log" \
        --monitor-from "${MONITOR_FROM[$node]}" --log "$LOOP_LOG" --from-line "$log_from" \
        --reqid "$MESHWARD_REQID_DEC" || rc=$?
    ks_note "rekey_events_${node//-/_}" "$(tail -n +"$((${MONITOR_FROM[$node]} + 1))" "$KS_WORK/monitor-$node.log" |
        grep -c "reqid $MESHWARD_REQID_DEC " || true)"
    [[ $rc -eq 0 ]] || ks_fail "on $node the watch's changes, the kernel's events and the applied operations differ (above)"
done

ks_log "SIGTERM to the loop"
kill -TERM "$LOOP_PID"
rc=0
wait "$LOOP_PID" || rc=$?
LOOP_PID=""
[[ $rc -eq 0 ]] || ks_fail "the loop exited $rc on SIGTERM (0 expected)"
ks_note loop_cycles "$(cycles_done)"
rc=0
ip netns exec "$CONTROLLER_HOST" "$MESHWARD" plan "$SPEC" --detailed-exitcode --state-dir "$KS_STATE" || rc=$?
[[ $rc -eq 0 ]] || ks_fail "plan --detailed-exitcode from $CONTROLLER_HOST exited $rc (0 expected)"
ks_xfrm_counters "at the end"
sleep 3 # the end of the stream must be clean
