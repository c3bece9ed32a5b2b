#!/usr/bin/env bash
# 00: the make-before-break orders of design.md section 4, executed with plain
# `ip xfrm` while traffic flows: every traffic channel is created (inbound
# optional, outbound pinned, inbound required), then rekeyed KS_REKEYS times
# (inbound g+1, outbound g+1 + policy update pinning it, delete outbound g,
# drain, delete inbound g). Must lose nothing and move no drop counter: this
# proves the harness measures correctly and documents the orders on real kernels.
# ks-expect: clean
# ks-timeout: 240
source "$KS_LIB/scenario.sh"

REKEYS=${KS_REKEYS:-3}
DRAIN=${KS_DRAIN:-1}
ALG='rfc4106(gcm(aes))'

declare -A GEN SPI KEY
# SPIs unique per destination across every generation: 0x1000 + 0x100*channel + generation.
spi_of() { printf '0x%08x' $((0x1000 + 0x100 * $1 + $2)); }

idx=0
declare -a CH_IDX=()
for ch in $KS_CHANNELS; do
    CH_IDX+=("$idx:$ch")
    idx=$((idx + 1))
done

# parse "i:src>dst/fam" into globals i src dst fam sa da plen
parse() {
    i=${1%%:*}
    local c=${1#*:}
    fam=${c##*/}
    src=${c%%>*}
    dst=${c#*>}
    dst=${dst%/*}
    sa=$(ks_addr "$src" "$fam")
    da=$(ks_addr "$dst" "$fam")
    if [[ $fam == 4 ]]; then plen=32; else plen=128; fi
    ch=$c
}

sa_add() { # NS SPI KEY
    x ip -n "$1" xfrm state add src "$sa" dst "$da" proto esp spi "$2" reqid $MESHWARD_REQID \
        mode transport aead "$ALG" "$3" 128
}
sa_del() { # NS SPI
    x ip -n "$1" xfrm state delete src "$sa" dst "$da" proto esp spi "$2"
}
policy_in() { # add|update LEVEL
    x ip -n "$dst" xfrm policy "$1" src "$sa/$plen" dst "$da/$plen" dir in \
        tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level "$2"
}
policy_out() { # add|update SPI
    x ip -n "$src" xfrm policy "$1" src "$sa/$plen" dst "$da/$plen" dir out \
        tmpl src "$sa" dst "$da" proto esp spi "$2" reqid $MESHWARD_REQID mode transport level required
}

ks_log "new channels (generation 1) on ${#CH_IDX[@]} channels"
ks_log "step 1: receiver adds inbound SA and inbound policy, template optional (level use)"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    GEN[$i]=1
    SPI[$i]=$(spi_of "$i" 1)
    KEY[$i]=$(ks_key)
    sa_add "$dst" "${SPI[$i]}" "${KEY[$i]}"
    policy_in add use
done
ks_log "step 2: sender adds outbound SA, then outbound policy (required, SPI pinned)"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    sa_add "$src" "${SPI[$i]}" "${KEY[$i]}"
    policy_out add "${SPI[$i]}"
done
ks_log "step 3: receiver updates inbound policy to required"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    policy_in update required
    ks_mark enforce "$ch"
done
sleep 2
ks_dump

for round in $(seq 1 "$REKEYS"); do
    ks_log "rekey round $round"
    declare -A OLD=()
    ks_log "step 1: receiver adds inbound SA g+1"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        OLD[$i]=${SPI[$i]}
        GEN[$i]=$((GEN[$i] + 1))
        SPI[$i]=$(spi_of "$i" "${GEN[$i]}")
        KEY[$i]=$(ks_key)
        sa_add "$dst" "${SPI[$i]}" "${KEY[$i]}"
    done
    ks_log "step 2: sender adds outbound SA g+1, then updates its policy to pin g+1 (the switch)"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        sa_add "$src" "${SPI[$i]}" "${KEY[$i]}"
        policy_out update "${SPI[$i]}"
    done
    ks_log "step 3: sender deletes outbound SA g"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        sa_del "$src" "${OLD[$i]}"
    done
    ks_log "step 4: after the drain (${DRAIN}s), receiver deletes inbound SA g"
    sleep "$DRAIN"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        x ip -n "$dst" -s xfrm state get src "$sa" dst "$da" proto esp spi "${OLD[$i]}" |
            grep -A1 'lifetime current' | tail -1 || true
        sa_del "$dst" "${OLD[$i]}"
    done
    sleep 1
done

# The end state: one SA per channel end, every outbound policy pinning the newest SPI.
for n in $KS_NODES; do
    want=0
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        [[ $src == "$n" || $dst == "$n" ]] && want=$((want + 1))
    done
    got=$(ks_owned_sa_count "$n")
    [[ $got -eq $want ]] || ks_fail "$n holds $got owned SAs, expected $want"
done
for e in "${CH_IDX[@]}"; do
    parse "$e"
    ip -n "$src" xfrm policy get src "$sa/$plen" dst "$da/$plen" dir out | grep -q "spi ${SPI[$i]} " ||
        ks_fail "$ch: outbound policy does not pin ${SPI[$i]}"
done
ks_note rekeys "$REKEYS"
ks_note channels "${#CH_IDX[@]}"
ks_log "done: ${#CH_IDX[@]} channels, $REKEYS rekeys each"
