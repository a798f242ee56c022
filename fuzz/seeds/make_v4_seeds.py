#!/usr/bin/env python3
"""Writes the hand-made v4 seeds of the `ops` target into fuzz/corpus/ops/,
each named by the SHA-1 of its bytes like libFuzzer's own inputs (run this
again after a `cmin` to put them back).

v4 is v3 (keyed commands) with another reservation field: a reservation's
seq is the SKU version its allocation produced, so a v4 step names one of
the ids the script was granted so far, or one never issued / not live:

  tag 0-191:   the (tag % 16)-th most recently granted id (0: the newest), wrapping
  tag 192-223: the (tag - 192)-th granted id from the oldest, wrapping
  tag 224-255: then a sku byte; tag % 4: seq 0, the SKU's version (once
               lapsed holds are swept), that version + 1, u64::MAX

The byte format is `decode_commands` in fuzz/src/lib.rs, documented in
fuzz/README.md. Run from fuzz/: python3 seeds/make_v4_seeds.py
"""
import hashlib
import os

V4 = 0xC0
DEFINE, RECEIVE, ALLOCATE, TAKE, RELEASE, COMMIT, ADJUST, ADVANCE, SET = 0, 1, 2, 4, 5, 6, 7, 8, 9
ORDER, EXTEND, EXPIRE_DUE, LOW_STOCK, CONDITIONAL, QUERY = 10, 11, 12, 13, 14, 15
KEYED = 16
COMMAND_OPS = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14]
S1, S2, S3 = 0, 1, 2


def recent(n=0):
    assert 0 <= n < 16
    return [n]


def oldest(n=0):
    assert 0 <= n < 32
    return [192 + n]


def other(sku, kind):
    return [224 + ["zero", "current", "next", "max"].index(kind), sku]


def ms(v):
    if v % 5 == 0 and v // 5 < 200:
        return [v // 5]
    if v < 50:
        return [200 + v]
    return [254, v & 255, v >> 8]


def q(v):
    assert v < 32
    return [v]


def receive(sku, lot, qty, expires=None):
    exp = [0] if expires is None else [1] + ms(expires)
    return [RECEIVE, sku, lot] + q(qty) + [0] + exp + [0]


def request(op, sku, qty, hold=None, partial=False):
    # SKU policy, no shelf life, hold (tag 100..199: (t-100)*3+1 ms), no expected version
    hold_tag = 0 if hold is None else 100 + (hold - 1) // 3
    assert hold is None or (hold - 1) % 3 == 0
    return [op, sku] + q(qty) + [1 if partial else 0, 0, 0, hold_tag, 0]


def allocate(sku, qty, hold=None):
    return request(ALLOCATE, sku, qty, hold)


def take(sku, qty):
    return request(TAKE, sku, qty)


def release(pick):
    return [RELEASE] + pick


def commit(pick, qty=None):
    return [COMMIT] + pick + ([0] if qty is None else [1] + q(qty))


def extend(pick, by):
    return [EXTEND] + pick + [3] + ms(by)


def adjust(sku, lot, delta):
    sign, mag = (1, -delta) if delta < 0 else (0, delta)
    return [ADJUST, sku, lot, sign] + q(mag) + [1, 0]


def order(lines, hold=None):
    """lines: [(sku, qty)], 1-4 of them; no policy, no shelf life."""
    assert 1 <= len(lines) <= 4
    body = []
    for sku, qty in lines:
        body += [sku] + q(qty) + [0, 0]
    hold_tag = 0 if hold is None else 100 + (hold - 1) // 3
    return [ORDER, len(lines) - 1] + body + [hold_tag]


def advance(v):
    return [ADVANCE] + ms(v)


def query(pick):
    return [QUERY] + pick


def keyed(key, step):
    op, fields = step[0], step[1:]
    return [KEYED, key] + [COMMAND_OPS.index(op)] + fields


def again(key):
    return [KEYED, key | 4]


stock = receive(S1, 1, 20) + receive(S1, 2, 10, expires=500) + receive(S2, 1, 20)
seeds = {
    # Each end of the newest hold, then the same id again (ended).
    "release_recent": stock + allocate(S1, 4) + allocate(S1, 3) + release(recent(0)) + release(recent(0))
        + commit(recent(1), 2) + commit(recent(1)) + query(recent(1)),
    # The oldest ids: live, then ended; wrapping past the end.
    "oldest_wrapping": stock + allocate(S1, 2) + allocate(S2, 2) + allocate(S1, 2) + commit(oldest(0))
        + release(oldest(4)) + commit(oldest(2), 1) + query(oldest(3)),
    # Extensions of a hold with a deadline, a lapse found by the release.
    "extend_then_lapse": stock + allocate(S1, 3, hold=31) + extend(recent(0), 40) + advance(60)
        + release(recent(0)) + advance(20) + release(recent(0)) + query(recent(0)),
    # Order parts are granted too: end each part.
    "order_parts": stock + order([(S1, 3), (S2, 4)]) + release(recent(0)) + commit(recent(1)) + query(oldest(0)),
    # Ids never issued or not live: seq 0, the latest version (a sale's:
    # no hold), the next version, u64::MAX, an undefined SKU's.
    "never_issued": stock + allocate(S1, 1) + take(S1, 1) + release(other(S1, "zero"))
        + release(other(S1, "current")) + commit(other(S1, "next")) + extend(other(S1, "max"), 5)
        + release(other(S3, "current")) + query(other(S2, "next")),
    # The latest version is a live hold.
    "current_is_live": stock + allocate(S1, 5) + commit(other(S1, "current"), 2) + query(recent(0)),
    # Before anything is granted: seq 0 of SKU 1.
    "nothing_granted": release(recent(3)) + commit(oldest(1)) + stock + allocate(S1, 1) + release(recent(3)),
    # A shrink displacing the newest holds, then ending them.
    "shrink_then_end": stock + allocate(S1, 15) + allocate(S1, 4) + adjust(S1, 1, -18) + commit(recent(0))
        + release(recent(1)) + query(oldest(0)),
    # Keyed ends retried: replays, and a reused key.
    "keyed_ends": stock + allocate(S1, 4) + keyed(0, release(recent(0))) + again(0) + allocate(S1, 2)
        + keyed(0, release(recent(0))) + keyed(1, commit(recent(0), 1)) + again(1) + query(recent(0)),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "ops")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    assert all(0 <= b < 256 for b in data), name
    data = bytes([V4] + data)
    path = os.path.join(out, hashlib.sha1(data).hexdigest())
    with open(path, "wb") as f:
        f.write(data)
    print(os.path.basename(path), name)
print(len(seeds), "v4 ops seeds written to", os.path.normpath(out))
