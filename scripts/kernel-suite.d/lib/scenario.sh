# Helpers for kernel-suite scenarios. A scenario starts with
#     source "$KS_LIB/scenario.sh"
# and runs inside the guest with the namespaces built and traffic flowing.
#
# Environment given by the runner (guest.py):
#   MESHWARD        the meshward binary ("" when not built)
#   KS_HAS_APPLY    1 when that binary has `apply`
#   KS_WORK         the scenario's scratch directory (the current directory)
#   KS_STATE        a fresh --state-dir for meshward
#   KS_SPECS        the suite's spec directory (scripts/kernel-suite.d/specs)
#   KS_MARKS        enforcement marks file read by the traffic analysis
#   KS_NODES        node (= namespace) names: web-1 web-2 app-1 db-1
#   KS_PAIRS        pairs carrying traffic, "a~b/family"
#   KS_CHANNELS     directed channels carrying traffic, "src>dst/family"
#   KS_ADDR4_<n>, KS_ADDR6_<n>   addresses, node name with "-" as "_"
#   KS_RATE         datagrams per second per channel
# shellcheck shell=bash
set -eEuo pipefail
# A command that stops the script under set -e says which one, where and with what status.
trap 'ks_err_rc=$?; echo "[$(date +%T.%3N)] FAIL: ${BASH_SOURCE[0]##*/}:$LINENO: \`$BASH_COMMAND\` exited $ks_err_rc" >&2' ERR

# Meshward logs every kernel operation it applies (info) into the scenario log.
export MESHWARD_LOG_LEVEL=${MESHWARD_LOG_LEVEL:-info}

MESHWARD_REQID=0x4d57
MESHWARD_REQID_DEC=19799

ks_log() { echo "[$(date +%T.%3N)] $*"; }
ks_fail() {
    echo "[$(date +%T.%3N)] FAIL: $*" >&2
    exit 1
}
# Records a key=value pair in the scenario's result (notes).
ks_note() { echo "$1=$2" >>"$KS_WORK/notes"; }

# ks_addr NODE 4|6
ks_addr() {
    local v="KS_ADDR${2}_${1//-/_}"
    echo "${!v}"
}

# Marks the moment from which a channel ("src>dst/fam") or every channel ("all")
# must no longer carry plaintext (enforce), or may again (relax).
ks_mark() { echo "$(date +%s.%N) $1 $2" >>"$KS_MARKS"; }

# ks_mark_pairs enforce|relax "a~b/4 c~d/6 ...": both directions of each pair.
ks_mark_pairs() {
    local kind=$1 p a b fam
    for p in $2; do
        fam=${p##*/}
        a=${p%%~*}
        b=${p#*~}
        b=${b%/*}
        ks_mark "$kind" "$a>$b/$fam"
        ks_mark "$kind" "$b>$a/$fam"
    done
}

# Runs a command and echoes it first, so the log documents the exact order.
x() {
    echo "+ $*"
    "$@"
}

# Batching, because every process start is expensive in an emulated guest:
# ks_q NS ARGS... queues one `ip` command for namespace NS (and echoes it, so the
# log documents the exact order); ks_flush runs each namespace's queue as one
# `ip -n NS -batch -` (in order, stopping at the first error) and empties the
# queues. Flush between steps that must be confirmed before the next starts.
declare -a KS_Q_ORDER=()
declare -A KS_Q=()
ks_q() {
    local ns=$1
    shift
    echo "+ ip -n $ns $*"
    [[ -v "KS_Q[$ns]" ]] || KS_Q_ORDER+=("$ns")
    KS_Q[$ns]+="$*"$'\n'
}
ks_flush() {
    local ns
    for ns in "${KS_Q_ORDER[@]}"; do
        printf '%s' "${KS_Q[$ns]}" | ip -n "$ns" -batch - || ks_fail "ip -n $ns -batch failed"
    done
    KS_Q_ORDER=()
    KS_Q=()
}

# A fresh AEAD key for rfc4106(gcm(aes)): 32 key bytes + 4 salt bytes.
ks_key() { echo "0x$(od -An -tx1 -N36 /dev/urandom | tr -d ' \n')"; }
# ks_keys N: N fresh keys into the array KS_KEYS with one read (a process start
# costs tens of milliseconds in a loaded emulated guest).
ks_keys() {
    mapfile -t KS_KEYS < <(od -An -tx1 -v -w36 -N$((36 * $1)) /dev/urandom | tr -d ' ' | sed 's/^/0x/')
}
# ks_addr_to VAR NODE FAMILY: like ks_addr, without a subshell.
ks_addr_to() {
    local v="KS_ADDR${3}_${2//-/_}"
    printf -v "$1" '%s' "${!v}"
}

# Number of Meshward-owned SAs / policies in a node's kernel.
ks_owned_sa_count() { ip -n "$1" xfrm state | grep -c "reqid $MESHWARD_REQID_DEC " || true; }
ks_owned_policy_count() { ip -n "$1" xfrm policy | grep -c "reqid $MESHWARD_REQID_DEC " || true; }

# The SPIs pinned by a node's owned outbound policies, sorted, one line.
ks_pinned_spis() {
    ip -n "$1" xfrm policy list dir out | awk -v r="$MESHWARD_REQID_DEC" \
        '/proto esp spi/ { for (i = 1; i <= NF; i++) if ($i == "spi") s = $(i + 1) }
         /reqid/ { for (i = 1; i <= NF; i++) if ($i == "reqid" && $(i + 1) == r && s != "") print s; s = "" }' |
        sort | tr '\n' ' '
}

# Every node's pinned SPIs, "node:spi ..." on one line.
ks_all_pinned_spis() {
    local n
    for n in $KS_NODES; do echo -n "$n:[$(ks_pinned_spis "$n")] "; done
    echo
}

# Dumps every node's owned kernel objects into the log.
ks_dump() {
    local n
    for n in $KS_NODES; do
        echo "== $n"
        ip -n "$n" xfrm state | grep -B1 -A4 "reqid $MESHWARD_REQID_DEC " | grep -v '^\s*\(aead\|auth\|enc\)' || true
        ip -n "$n" xfrm policy | grep -B2 -A1 "reqid $MESHWARD_REQID_DEC " || true
    done
}

# --------------------------------------------------------------------- meshward

# mw SUBCOMMAND ARGS...: the binary with this scenario's state directory; the log
# shows when it started and how long it ran.
mw() {
    local sub=$1 t0=$EPOCHREALTIME rc=0
    shift
    printf '[%(%T)T] + meshward %s --state-dir $KS_STATE\n' -1 "$sub $*"
    "$MESHWARD" "$sub" "$@" --state-dir "$KS_STATE" || rc=$?
    local us=$((${EPOCHREALTIME/./} - ${t0/./}))
    printf '[meshward %s: exit %d after %d.%02d s]\n' "$sub" "$rc" $((us / 1000000)) $((us % 1000000 / 10000))
    return $rc
}

# The log line meshward writes (text format, info) for each kernel operation a pass applied,
# as a glob for [[ == ]]: `... info meshward: applied node=NODE operation="..."`.
KS_APPLIED_LINE='*: applied node=*'
# ks_count_applied LOG: how many operations that log says were applied.
ks_count_applied() { grep -c ': applied node=' "$1" || true; }

# ks_xfrm_counters LABEL: logs every node's nonzero xfrm_stat counters (running totals since
# the namespaces were made), so the log shows which step moved one.
ks_xfrm_counters() {
    local n line
    for n in $KS_NODES; do
        line=$(ip netns exec "$n" awk '$2 != 0 { printf "%s=%s ", $1, $2 }' /proc/net/xfrm_stat)
        echo "[xfrm_stat $1] $n: ${line:-all zero}"
    done
}

# Fails unless `plan --detailed-exitcode` reports nothing to change.
ks_expect_converged() {
    local rc=0
    mw plan "$1" --detailed-exitcode || rc=$?
    [[ $rc -eq 0 ]] || ks_fail "plan --detailed-exitcode exited $rc after convergence (0 expected)"
}

# Node list for specs. ks_spec OUT [options]: writes a spec (format v1) for the
# test fleet.
#   --nodes "web-1 app-1 db-1"   nodes to declare (default those three)
#   --flows "web-app app-db"     flows (web-app: tier web -> app; app-db: app -> db)
#   --cipher NAME                defaults.cipher (default aes-gcm-256)
#   --rekey-every DURATION       defaults.rekey.every (default 24h)
#   --drain DURATION             defaults.drain (default 2s)
ks_spec() {
    local out=$1
    shift
    local nodes="web-1 app-1 db-1" flows="web-app app-db" cipher=aes-gcm-256 every=24h drain=2s
    while [[ $# -gt 0 ]]; do
        case $1 in
        --nodes) nodes=$2 ;;
        --flows) flows=$2 ;;
        --cipher) cipher=$2 ;;
        --rekey-every) every=$2 ;;
        --drain) drain=$2 ;;
        *) ks_fail "ks_spec: unknown option $1" ;;
        esac
        shift 2
    done
    {
        cat <<EOF
version: 1
cluster: kernel-suite
defaults:
  cipher: $cipher
  rekey:
    every: $every
  drain: $drain
  enforcement: required
nodes:
EOF
        local n tier a6
        for n in $nodes; do
            tier=${n%%-*}
            a6=$(ks_addr "$n" 6)
            echo "  - name: $n"
            if [[ -n $a6 ]]; then
                echo "    addresses: [$(ks_addr "$n" 4), \"$a6\"]"
            else
                echo "    addresses: [$(ks_addr "$n" 4)]"
            fi
            echo "    labels: { tier: $tier }"
            echo "    endpoint: netns:$n"
        done
        if [[ -z $flows ]]; then
            echo "flows: []"
        else
            echo "flows:"
            local f
            for f in $flows; do
                case $f in
                web-app) printf '  - name: web-to-app\n    from: { tier: web }\n    to:   { tier: app }\n' ;;
                app-db) printf '  - name: app-to-db\n    from: { tier: app }\n    to:   { tier: db }\n' ;;
                *) ks_fail "ks_spec: unknown flow $f" ;;
                esac
            done
        fi
    } >"$out"
}

# The traffic pairs a spec protects, for ks_mark_pairs.
ks_spec_pairs() {
    local nodes=" $1 " flows=" $2 " out=""
    if [[ $flows == *" web-app "* ]]; then
        [[ $nodes == *" web-1 "* && $nodes == *" app-1 "* ]] && out+="web-1~app-1/4 "
        [[ $nodes == *" web-2 "* && $nodes == *" app-1 "* ]] && out+="web-2~app-1/4 "
    fi
    if [[ $flows == *" app-db "* && $nodes == *" app-1 "* && $nodes == *" db-1 "* ]]; then
        out+="app-1~db-1/4 app-1~db-1/6 "
    fi
    echo "$out"
}

# ks_expect_fresh_spis "SPIS SEEN" WHAT: fails when web-1, app-1 or db-1 pins an SPI in the list.
ks_expect_fresh_spis() {
    local n spi
    for n in web-1 app-1 db-1; do
        for spi in $(ks_pinned_spis "$n"); do
            [[ $1 != *"$spi"* ]] || ks_fail "$2: $n pins $spi, an SPI used before"
        done
    done
}

# ks_expect_counts "web-1:2 app-1:6 ...": each node holds exactly that many owned
# SAs and owned policies (one of each per channel end).
ks_expect_counts() {
    local e n want sas pols
    for e in $1; do
        n=${e%%:*} want=${e#*:}
        sas=$(ks_owned_sa_count "$n")
        pols=$(ks_owned_policy_count "$n")
        [[ $sas -eq $want && $pols -eq $want ]] ||
            ks_fail "$n holds $sas owned SAs and $pols owned policies, expected $want of each"
    done
}

# Fails unless every owned SA in every node uses the given algorithm text
# (as `ip xfrm state` prints it, e.g. "rfc4106(gcm(aes))").
ks_expect_algorithm() {
    local n bad
    for n in $KS_NODES; do
        bad=$(ip -n "$n" xfrm state | awk -v r="reqid $MESHWARD_REQID_DEC " -v alg="$1" '
            /^src/ { owned = 0 } index($0, r) { owned = 1 }
            owned && /^\t(aead|enc|auth-trunc)/ && index($0, alg) == 0 && $1 != "auth-trunc" { print $2 }')
        [[ -z $bad ]] || ks_fail "$n: owned SA with algorithm $bad, expected $1"
    done
}

# The current time as seconds with fractions, without a process start.
ks_now() { printf -v "$1" '%s' "$EPOCHREALTIME"; }
