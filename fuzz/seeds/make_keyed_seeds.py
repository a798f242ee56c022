#!/usr/bin/env python3
"""Writes the hand-made v3 (keyed command) seeds of the `ops` target into
fuzz/corpus/ops/, each named by the SHA-1 of its bytes like libFuzzer's own
inputs (so a later `cmin` treats them like any other input; run this again
after one to put them back).

The byte format is `decode_commands` in fuzz/src/lib.rs, documented in
fuzz/README.md. The ledgers remember keys for 300 ms, at most 2 of them
(KEY_WINDOW). Run from fuzz/: python3 seeds/make_keyed_seeds.py
"""
import hashlib
import os

V3 = 0xD0
# v2 opcodes (a v3 opcode byte below 16 is the v2 step of that number)
DEFINE, RECEIVE, ALLOCATE, TAKE, RELEASE, COMMIT, ADJUST, ADVANCE, SET = 0, 1, 2, 4, 5, 6, 7, 8, 9
ORDER, EXTEND, EXPIRE_DUE, LOW_STOCK, CONDITIONAL, QUERY = 10, 11, 12, 13, 14, 15
KEYED = 16
COMMAND_OPS = [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14]
S1, S2, S3 = 0, 1, 2


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


def request(op, sku, qty, hold=None):
    # fill-or-kill, SKU policy, no shelf life, hold (tag 100..199: (t-100)*3+1 ms), no expected version
    hold_tag = 0 if hold is None else 100 + (hold - 1) // 3
    assert hold is None or (hold - 1) % 3 == 0
    return [op, sku] + q(qty) + [0, 0, 0, hold_tag, 0]


def allocate(sku, qty, hold=None):
    return request(ALLOCATE, sku, qty, hold)


def take(sku, qty):
    return request(TAKE, sku, qty)


def release(sku, seq):
    return [RELEASE, sku, seq]


def extend(sku, seq, by):
    return [EXTEND, sku, seq, 3] + ms(by)


def conditional_allocate(sku, qty, offset=0):
    tag = {0: 0, -1: 128, 1: 192}[offset]
    return [CONDITIONAL, tag] + request(ALLOCATE, sku, qty)[1:]


def expire_due_ahead(by):
    assert 1 <= by <= 32
    return [EXPIRE_DUE, 191 + by]


def advance(v):
    return [ADVANCE] + ms(v)


def set_clock(v):
    return [SET] + ms(v)


def query(sku, seq):
    return [QUERY, sku, seq]


def keyed(key, step):
    """Key `key` with a new command (one v2 command step's bytes)."""
    op, fields = step[0], step[1:]
    return [KEYED, key] + [COMMAND_OPS.index(op)] + fields


def again(key):
    """Key `key` with its last command again."""
    return [KEYED, key | 4]


stock = receive(S1, 1, 20) + receive(S2, 1, 20)
seeds = {
    # A sale replayed twice: sold once.
    "replay": stock + keyed(0, take(S1, 3)) + again(0) + again(0) + query(S1, 1),
    # A refusal (no stock yet) replayed as a refusal after stock arrived.
    "refusal_replayed": keyed(1, take(S1, 5)) + receive(S1, 1, 10) + again(1) + take(S1, 5),
    # The same key with a different quantity, then a different command.
    "conflict": stock + keyed(0, take(S1, 3)) + keyed(0, take(S1, 4)) + keyed(0, release(S1, 1)) + again(0)
        + keyed(0, take(S1, 3)),
    # Remembered until 1 ms before the window ends, forgotten at its end.
    "window_edge": stock + keyed(2, take(S1, 1)) + advance(299) + again(2) + advance(1) + again(2) + again(2),
    # Three keys, two remembered: the oldest is forgotten first.
    "count_eviction": stock + keyed(0, take(S1, 1)) + keyed(1, take(S1, 1)) + keyed(2, take(S1, 1)) + again(0)
        + again(2) + again(1) + again(0),
    # A key taken afresh after its window, then the clock goes back.
    "clock_backwards": stock + keyed(0, take(S1, 1)) + set_clock(400) + keyed(0, take(S1, 2)) + set_clock(0)
        + again(0) + keyed(0, take(S1, 1)) + set_clock(800) + keyed(1, take(S2, 1)) + set_clock(100) + again(0),
    # A conditional allocation retried after the version moved: replayed, not refused.
    "conditional_retry": stock + keyed(3, conditional_allocate(S1, 2)) + take(S1, 1) + again(3) + again(3),
    # `expire_due` in the future is refused; the retry when it is no longer in the future is still refused.
    "expire_due_refusal": stock + keyed(3, expire_due_ahead(5)) + advance(10) + again(3),
    # Keyed holds with deadlines: extend and release retried around a lapse.
    "lifecycle": stock + keyed(0, allocate(S1, 4, hold=31)) + keyed(1, extend(S1, 1, 20)) + again(1) + advance(40)
        + again(0) + keyed(2, release(S1, 1)) + advance(20) + again(2) + query(S1, 1),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "ops")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    data = bytes([V3] + data)
    path = os.path.join(out, hashlib.sha1(data).hexdigest())
    with open(path, "wb") as f:
        f.write(data)
    print(os.path.basename(path), name)
print(len(seeds), "keyed ops seeds written to", os.path.normpath(out))
