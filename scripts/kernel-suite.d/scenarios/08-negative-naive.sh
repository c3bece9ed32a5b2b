#!/usr/bin/env bash
# 08: the naive key swap (delete the old SAs, then add new ones, sender first)
# through `ip xfrm` while traffic flows. It MUST lose packets: the scenario passes
# only if the suite observes losses, which proves the suite can fail.
# ks-expect: loss
# ks-timeout: 180
source "$KS_LIB/scenario.sh"

ALG='rfc4106(gcm(aes))'
declare -A SPI KEY
parse() {
    fam=${ch##*/} src=${ch%%>*} dst=${ch#*>}
    dst=${dst%/*}
    ks_addr_to sa "$src" "$fam"
    ks_addr_to da "$dst" "$fam"
    if [[ $fam == 4 ]]; then plen=32; else plen=128; fi
}
# A correct, staged start (as in 00), so that only the swap below can lose.
ks_keys 16
idx=0
for ch in $KS_CHANNELS; do
    parse
    printf -v "SPI[$idx]" '0x%08x' $((0x2000 + 0x100 * idx + 1))
    KEY[$idx]=${KS_KEYS[idx]}
    ks_q "$dst" xfrm state add src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport aead "$ALG" "${KEY[$idx]}" 128
    ks_q "$dst" xfrm policy add src "$sa/$plen" dst "$da/$plen" dir in tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level use
    idx=$((idx + 1))
done
ks_flush
idx=0
for ch in $KS_CHANNELS; do
    parse
    ks_q "$src" xfrm state add src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport aead "$ALG" "${KEY[$idx]}" 128
    ks_q "$src" xfrm policy add src "$sa/$plen" dst "$da/$plen" dir out tmpl src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport level required
    idx=$((idx + 1))
done
ks_flush
for ch in $KS_CHANNELS; do
    parse
    ks_q "$dst" xfrm policy update src "$sa/$plen" dst "$da/$plen" dir in tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level required
done
ks_flush
for ch in $KS_CHANNELS; do ks_mark enforce "$ch"; done
sleep 2

ks_log "naive swap: delete old SAs on both ends, then add the new ones, sender first"
idx=0
for ch in $KS_CHANNELS; do
    parse
    printf -v new '0x%08x' $((${SPI[$idx]} + 1))
    key=${KS_KEYS[idx + 8]}
    x ip -n "$src" xfrm state delete src "$sa" dst "$da" proto esp spi "${SPI[$idx]}"
    x ip -n "$dst" xfrm state delete src "$sa" dst "$da" proto esp spi "${SPI[$idx]}"
    x ip -n "$src" xfrm state add src "$sa" dst "$da" proto esp spi "$new" reqid $MESHWARD_REQID mode transport aead "$ALG" "$key" 128
    x ip -n "$src" xfrm policy update src "$sa/$plen" dst "$da/$plen" dir out tmpl src "$sa" dst "$da" proto esp spi "$new" reqid $MESHWARD_REQID mode transport level required
    sleep 0.2 # the receiver's new SA arrives a moment later, as from a second host
    x ip -n "$dst" xfrm state add src "$sa" dst "$da" proto esp spi "$new" reqid $MESHWARD_REQID mode transport aead "$ALG" "$key" 128
    idx=$((idx + 1))
done
sleep 2
ks_log "done"
