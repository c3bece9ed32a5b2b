#!/usr/bin/env bash
# 00: the make-before-break orders of design.md section 4, executed with plain
# `ip xfrm` while traffic flows: every traffic channel is created (inbound
# optional, outbound pinned, inbound required), then rekeyed KS_REKEYS times
# (inbound g+1, outbound g+1 + policy update pinning it, delete outbound g,
# drain, delete inbound g). Must lose nothing and move no drop counter: this
# proves the harness measures correctly and documents the orders on real kernels.
# Each step runs for all channels at once (one `ip -batch` per namespace), like
# one Meshward pass; a step starts only after the previous one returned.
# ks-expect: clean
# ks-timeout: 600
source "$KS_LIB/scenario.sh"

REKEYS=${KS_REKEYS:-3}
DRAIN=${KS_DRAIN:-1}
ALG='rfc4106(gcm(aes))'

declare -A GEN SPI KEY OLD
# SPIs unique per destination across every generation: 0x1000 + 0x100*channel + generation.
spi_of() { printf -v "$1" '0x%08x' $((0x1000 + 0x100 * $2 + $3)); } # VAR channel generation

CH_IDX=()
idx=0
for ch in $KS_CHANNELS; do
    CH_IDX+=("$idx:$ch")
    idx=$((idx + 1))
done

# parse "i:src>dst/fam" into the globals i ch src dst fam sa da plen
parse() {
    i=${1%%:*}
    ch=${1#*:}
    fam=${ch##*/}
    src=${ch%%>*}
    dst=${ch#*>}
    dst=${dst%/*}
    ks_addr_to sa "$src" "$fam"
    ks_addr_to da "$dst" "$fam"
    if [[ $fam == 4 ]]; then plen=32; else plen=128; fi
}
sa_add() { ks_q "$1" xfrm state add src "$sa" dst "$da" proto esp spi "$2" reqid $MESHWARD_REQID mode transport aead "$ALG" "$3" 128; }
sa_del() { ks_q "$1" xfrm state delete src "$sa" dst "$da" proto esp spi "$2"; }
policy_in() { # add|update LEVEL
    ks_q "$dst" xfrm policy "$1" src "$sa/$plen" dst "$da/$plen" dir in \
        tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level "$2"
}
policy_out() { # add|update SPI
    ks_q "$src" xfrm policy "$1" src "$sa/$plen" dst "$da/$plen" dir out \
        tmpl src "$sa" dst "$da" proto esp spi "$2" reqid $MESHWARD_REQID mode transport level required
}

ks_keys $((${#CH_IDX[@]} * (REKEYS + 1)))
k=0
ks_log "new channels (generation 1) on ${#CH_IDX[@]} channels"
ks_log "step 1: receiver adds inbound SA and inbound policy, template optional (level use)"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    GEN[$i]=1
    spi_of "SPI[$i]" "$i" 1
    KEY[$i]=${KS_KEYS[k++]}
    sa_add "$dst" "${SPI[$i]}" "${KEY[$i]}"
    policy_in add use
done
ks_flush
ks_log "step 2: sender adds outbound SA, then outbound policy (required, SPI pinned)"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    sa_add "$src" "${SPI[$i]}" "${KEY[$i]}"
    policy_out add "${SPI[$i]}"
done
ks_flush
ks_log "step 3: receiver updates inbound policy to required"
for e in "${CH_IDX[@]}"; do
    parse "$e"
    policy_in update required
done
ks_flush
for e in "${CH_IDX[@]}"; do
    parse "$e"
    ks_mark enforce "$ch"
done
sleep 2

for round in $(seq 1 "$REKEYS"); do
    ks_log "rekey round $round"
    ks_log "step 1: receiver adds inbound SA g+1"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        OLD[$i]=${SPI[$i]}
        GEN[$i]=$((GEN[$i] + 1))
        spi_of "SPI[$i]" "$i" "${GEN[$i]}"
        KEY[$i]=${KS_KEYS[k++]}
        sa_add "$dst" "${SPI[$i]}" "${KEY[$i]}"
    done
    ks_flush
    ks_log "step 2: sender adds outbound SA g+1, then updates its policy to pin g+1 (the switch)"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        sa_add "$src" "${SPI[$i]}" "${KEY[$i]}"
        policy_out update "${SPI[$i]}"
    done
    ks_flush
    ks_log "step 3: sender deletes outbound SA g"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        sa_del "$src" "${OLD[$i]}"
    done
    ks_flush
    ks_log "step 4: after the drain (${DRAIN}s), receiver deletes inbound SA g"
    sleep "$DRAIN"
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        sa_del "$dst" "${OLD[$i]}"
    done
    ks_flush
    sleep 1
done

# The end state: one SA per channel end, every outbound policy pinning the newest SPI.
declare -A WANT=()
for e in "${CH_IDX[@]}"; do
    parse "$e"
    WANT[$src]=$((${WANT[$src]:-0} + 1))
    WANT[$dst]=$((${WANT[$dst]:-0} + 1))
done
for n in $KS_NODES; do
    got=$(ks_owned_sa_count "$n")
    [[ $got -eq ${WANT[$n]:-0} ]] || ks_fail "$n holds $got owned SAs, expected ${WANT[$n]:-0}"
    pinned=$(ks_pinned_spis "$n")
    for e in "${CH_IDX[@]}"; do
        parse "$e"
        [[ $src != "$n" || " $pinned" == *" ${SPI[$i]} "* ]] || ks_fail "$ch: outbound policy does not pin ${SPI[$i]} ($pinned)"
    done
done
ks_note rekeys "$REKEYS"
ks_note channels "${#CH_IDX[@]}"
ks_log "done: ${#CH_IDX[@]} channels, $REKEYS rekeys each; pinned: $(ks_all_pinned_spis)"
