#!/usr/bin/env bash
# 08: the naive key swap (delete the old SAs, then add new ones, sender first)
# through `ip xfrm` while traffic flows. It MUST lose packets: the scenario passes
# only if the suite observes losses, which proves the suite can fail.
# ks-expect: loss
# ks-timeout: 180
source "$KS_LIB/scenario.sh"

ALG='rfc4106(gcm(aes))'
declare -A SPI
idx=0
for ch in $KS_CHANNELS; do
    fam=${ch##*/} src=${ch%%>*} dst=${ch#*>}
    dst=${dst%/*}
    sa=$(ks_addr "$src" "$fam") da=$(ks_addr "$dst" "$fam")
    plen=$([[ $fam == 4 ]] && echo 32 || echo 128)
    SPI[$idx]=$(printf '0x%08x' $((0x2000 + 0x100 * idx + 1)))
    key=$(ks_key)
    # A correct start (staged as in 00), so that only the swap below can lose.
    x ip -n "$dst" xfrm state add src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport aead "$ALG" "$key" 128
    x ip -n "$dst" xfrm policy add src "$sa/$plen" dst "$da/$plen" dir in tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level use
    x ip -n "$src" xfrm state add src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport aead "$ALG" "$key" 128
    x ip -n "$src" xfrm policy add src "$sa/$plen" dst "$da/$plen" dir out tmpl src "$sa" dst "$da" proto esp spi "${SPI[$idx]}" reqid $MESHWARD_REQID mode transport level required
    x ip -n "$dst" xfrm policy update src "$sa/$plen" dst "$da/$plen" dir in tmpl src "$sa" dst "$da" proto esp reqid $MESHWARD_REQID mode transport level required
    ks_mark enforce "$ch"
    idx=$((idx + 1))
done
sleep 2

ks_log "naive swap: delete old SAs on both ends, then add the new ones, sender first"
idx=0
for ch in $KS_CHANNELS; do
    fam=${ch##*/} src=${ch%%>*} dst=${ch#*>}
    dst=${dst%/*}
    sa=$(ks_addr "$src" "$fam") da=$(ks_addr "$dst" "$fam")
    plen=$([[ $fam == 4 ]] && echo 32 || echo 128)
    new=$(printf '0x%08x' $((SPI[idx] + 1)))
    key=$(ks_key)
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
