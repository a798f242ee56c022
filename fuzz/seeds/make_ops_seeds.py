#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the `ops` target (fuzz/corpus/ops/).

The byte format is the decoder in fuzz/src/lib.rs (`decode_commands`):
one opcode byte per step, then its fields; missing bytes read as 0. These
are v1 scripts: `release(sku, k)` / `commit(sku, k)` name the k-th
reservation granted on the SKU (seq 0 for k = 0). HALF is half the maximum
quantity, rounded up (2^39 since the maximum is 2^40 - 1).
Run from fuzz/: python3 seeds/make_ops_seeds.py
"""
import os

DEFINE, RECEIVE, ALLOCATE, TAKE, RELEASE, COMMIT, ADJUST, ADVANCE, SET = 0, 1, 2, 4, 5, 6, 7, 8, 9
S1, S2, S3 = 0, 1, 2  # SkuId(1) FEFO, SkuId(2) FIFO, SkuId(3) undefined
EDGE = {"MAX": 128, "MAX-1": 129, "MAX+1": 130, "U64MAX": 131, "HALF": 132, "HALF+1": 133, "I64MAX": 134, "1M": 135}
FOREVER = 250  # millis tag: u64::MAX


def q(v):
    """A quantity: small ints directly, edges by name, else u16."""
    if isinstance(v, str):
        return [EDGE[v]]
    if v < 32:
        return [v]
    if v % 100 == 0 and v // 100 < 32:
        return [224 + v // 100]
    assert v < 65536
    return [160, v & 255, v >> 8]


def ms(v):
    if v == "forever":
        return [FOREVER]
    if v % 5 == 0 and v // 5 < 200:
        return [v // 5]
    if v < 50:
        return [200 + v]
    return [254, v & 255, v >> 8]


def instant(v):
    return [0] if v is None else [1] + ms(v)


def define(sku, fifo=False):
    return [DEFINE, sku, 1 if fifo else 0]


def receive(sku, lot, qty, received=None, expires=None, attrs=0):
    return [RECEIVE, sku, lot] + q(qty) + instant(received) + instant(expires) + [attrs]


def request(op, sku, qty, partial=False, policy=0, shelf=None):
    shelf_bytes = [0] if shelf is None else ([4] + ms(shelf) if shelf != "max" else [6])
    return [op, sku] + q(qty) + [1 if partial else 0, policy] + shelf_bytes


def allocate(sku, qty, **kw):
    return request(ALLOCATE, sku, qty, **kw)


def take(sku, qty, **kw):
    return request(TAKE, sku, qty, **kw)


def release(sku, seq):
    return [RELEASE, sku, seq]


def commit(sku, seq, qty=None):
    return [COMMIT, sku, seq] + ([0] if qty is None else [1] + q(qty))


def adjust(sku, lot, delta, reason=1):
    if isinstance(delta, tuple):
        sign, mag = delta
    else:
        sign, mag = (1, -delta) if delta < 0 else (0, delta)
    return [ADJUST, sku, lot, sign] + q(mag) + [reason]


def advance(v):
    return [ADVANCE] + ms(v)


def set_clock(v):
    return [SET] + ms(v)


stock = receive(S1, 1, 10, expires=100) + receive(S1, 2, 20) + receive(S1, 3, 5, expires=50)
seeds = {
    "define_third_sku": define(S3) + define(S3, fifo=True) + define(S1),
    "receive_each_sku": receive(S1, 0, 5) + receive(S2, 0, 5) + receive(S3, 0, 5),
    "receive_zero_and_too_large": receive(S1, 0, 0) + receive(S1, 1, "MAX+1") + receive(S1, 2, "U64MAX"),
    "receive_duplicate_lot": receive(S1, 1, 5) + receive(S1, 1, 6),
    "receive_overflow": receive(S1, 1, "MAX") + receive(S1, 2, 1) + receive(S1, 3, "HALF+1"),
    "receive_max_then_grow": receive(S1, 1, "MAX-1") + adjust(S1, 1, 1) + adjust(S1, 1, 1),
    "receive_attributes": receive(S2, 1, 5, received=10, expires=500, attrs=3) + receive(S2, 2, 5, attrs=2),
    "fefo_order": stock + allocate(S1, 17),
    "fifo_order": receive(S2, 1, 5, received=30) + receive(S2, 2, 5, received=10) + allocate(S2, 7),
    "policy_override": stock + allocate(S1, 12, policy=2) + take(S1, 3, policy=1),
    "fill_or_kill_refused": stock + allocate(S1, 100),
    "partial_fill": stock + allocate(S1, 100, partial=True) + allocate(S1, 1, partial=True),
    "allocate_zero_and_too_large": stock + allocate(S1, 0) + allocate(S1, "MAX+1") + take(S1, "U64MAX"),
    "allocate_unknown_sku": allocate(S3, 1) + take(S3, 1) + release(S3, 1) + commit(S3, 1),
    "sold_out": receive(S1, 1, 3) + take(S1, 3) + take(S1, 1) + allocate(S1, 1, partial=True),
    "expiry_skips_lot": stock + advance(60) + allocate(S1, 30, partial=True) + advance(40) + take(S1, 1),
    "expiry_exact_instant": receive(S1, 1, 5, expires=100) + set_clock(100) + take(S1, 1) + set_clock(99) + take(S1, 1),
    "shelf_life": stock + allocate(S1, 5, shelf=60) + allocate(S1, 5, shelf="max") + take(S1, 5, shelf=100),
    "clock_backwards": stock + set_clock(1000) + take(S1, 1, partial=True) + set_clock(0) + take(S1, 30),
    "clock_end_of_time": stock + advance("forever") + advance("forever") + take(S1, 30, partial=True),
    "release_then_again": stock + allocate(S1, 12) + release(S1, 1) + release(S1, 1) + release(S1, 2),
    "release_seq_zero": stock + allocate(S1, 1) + release(S1, 0) + commit(S1, 0),
    "commit_all": stock + allocate(S1, 12) + commit(S1, 1) + commit(S1, 1) + release(S1, 1),
    "commit_partial": stock + allocate(S1, 25) + commit(S1, 1, 13),
    "commit_exceeds_held": stock + allocate(S1, 5) + commit(S1, 1, 6) + commit(S1, 1, 0) + commit(S1, 1, "MAX+1"),
    "commit_after_short": stock + allocate(S1, 10) + adjust(S1, 1, -10) + commit(S1, 1) + commit(S1, 1),
    "take_then_release": stock + take(S1, 4) + release(S1, 1),
    "adjust_grow": stock + take(S1, 35) + adjust(S1, 2, 7, reason=0) + take(S1, 7),
    "adjust_shrink_available": stock + adjust(S1, 2, -5) + allocate(S1, 30),
    "adjust_shrink_holds_newest_first": stock + allocate(S1, 4) + allocate(S1, 4) + allocate(S1, 4) + adjust(S1, 1, -10),
    "adjust_shrink_to_zero_line_removed": receive(S1, 1, 6) + receive(S1, 2, 6) + allocate(S1, 8) + adjust(S1, 1, -6) + release(S1, 1),
    "adjust_out_of_range": stock + allocate(S1, 5) + adjust(S1, 1, -11) + adjust(S1, 1, (0, "MAX")),
    "adjust_zero_and_too_large": stock + adjust(S1, 1, 0) + adjust(S1, 1, (0, "MAX+1")) + adjust(S1, 1, (1, "U64MAX")) + adjust(S1, 1, (1, "I64MAX")),
    "adjust_unknown": adjust(S1, 4, 1) + adjust(S3, 1, 1),
    "adjust_committed_lot": receive(S1, 1, 5) + take(S1, 5) + adjust(S1, 1, -1) + adjust(S1, 1, 3) + take(S1, 3),
    "many_reservations": stock + allocate(S1, 2) * 6 + release(S1, 3) + commit(S1, 5, 1) + adjust(S1, 3, -5) + release(S1, 5),
    "two_skus_interleaved": stock + receive(S2, 1, 9) + allocate(S2, 4) + allocate(S1, 4) + commit(S2, 1) + release(S1, 1),
    "flash_sale": receive(S1, 0, 10) + take(S1, 1) * 12,
    "perishables_chaos": receive(S1, 0, 30, expires=200) + receive(S1, 1, 30, expires=100) + receive(S1, 2, 30, expires=300)
        + allocate(S1, 45) + adjust(S1, 1, -3) + adjust(S1, 1, 2) + allocate(S1, 45) + adjust(S1, 0, -30) + advance(150) + take(S1, 30, partial=True),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "ops")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    assert all(0 <= b < 256 for b in data), name
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(bytes(data))
print(len(seeds), "ops seeds written to", os.path.normpath(out))
