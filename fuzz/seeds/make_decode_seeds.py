#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the `decode` target (fuzz/corpus/decode/):
JSON a host would load (commands, command lists, snapshots, outcomes, errors,
requests, lots, quantities), valid and subtly invalid.
Run from fuzz/: python3 seeds/make_decode_seeds.py

A decoded command runs on a ledger where its SKU has stock and reservations
(`stocked` in fuzz/src/lib.rs): a reservation's seq is the SKU version its
allocation produced, so there seq 3 is live without a deadline, 4 ended
(committed at version 5), 6 live with a deadline, 7 lapsed but not swept
yet (the command's own sweep is version 8), and 9 and up were never issued.
"""
import json
import os

MAX = (1 << 40) - 1  # Quantity::MAX
ZERO = {"secs": 0, "nanos": 0}


def req(sku=1, qty=5, fill="FillOrKill", policy=None, shelf=ZERO):
    return {"sku": sku, "quantity": qty, "fill": fill, "policy": policy, "min_shelf_life": shelf}


def lot(id=3, qty=5, received=None, expires=None, attrs=None):
    return {"id": id, "quantity": qty, "received_at": received, "expires_at": expires, "attributes": attrs}


res = {"sku": 1, "seq": 3}  # live, no deadline
quantities = {"received": 10, "adjusted": -2, "available": 3, "held": 4, "committed": 1}
snapshot = {
    "sku": 1, "version": 7, "policy": "Fefo",
    "lots": [{"id": 1, "received_at": 0, "expires_at": 100, "attributes": {"supplier": "acme", "location": None},
              "quantities": quantities}],
    "reservations": [{"id": res, "lines": [{"lot": 1, "quantity": 4}], "granted": 5, "shorted": 1}],
    "totals": quantities,
}

values = {
    "cmd_define": {"DefineSku": {"sku": 1, "policy": "Fefo"}},
    "cmd_define_fifo_new": {"DefineSku": {"sku": 9, "policy": "Fifo"}},
    "cmd_receive": {"Receive": {"sku": 1, "lot": lot()}},
    "cmd_receive_dup": {"Receive": {"sku": 1, "lot": lot(id=1)}},
    "cmd_receive_attrs": {"Receive": {"sku": 1, "lot": lot(received=5, expires=1000, attrs={"supplier": "s\u00e9", "location": "A\n1"})}},
    "cmd_receive_zero": {"Receive": {"sku": 1, "lot": lot(qty=0)}},
    "cmd_receive_max": {"Receive": {"sku": 1, "lot": lot(qty=MAX)}},
    "cmd_receive_too_large": {"Receive": {"sku": 1, "lot": lot(qty=MAX + 1)}},
    "cmd_allocate": {"Allocate": req()},
    "cmd_allocate_partial_fifo": {"Allocate": req(qty=100, fill="Partial", policy="Fifo")},
    "cmd_allocate_shelf": {"Allocate": req(qty=3, shelf={"secs": 1, "nanos": 5})},
    "cmd_allocate_shelf_max": {"Allocate": req(shelf={"secs": 18446744073709551615, "nanos": 999999999})},
    "cmd_allocate_u64max": {"Allocate": req(qty=18446744073709551615)},
    "cmd_take": {"Take": req(qty=18)},
    "cmd_take_zero": {"Take": req(qty=0)},
    "cmd_release": {"Release": {"reservation": res}},
    "cmd_release_ended": {"Release": {"reservation": {"sku": 1, "seq": 4}}},
    "cmd_release_seq0": {"Release": {"reservation": {"sku": 1, "seq": 0}}},
    "cmd_release_with_deadline": {"Release": {"reservation": {"sku": 1, "seq": 6}}},
    "cmd_release_lapsed": {"Release": {"reservation": {"sku": 1, "seq": 7}}},
    "cmd_release_a_commits_version": {"Release": {"reservation": {"sku": 1, "seq": 5}}},
    "cmd_release_the_sweeps_version": {"Release": {"reservation": {"sku": 1, "seq": 8}}},
    "cmd_release_never_issued": {"Release": {"reservation": {"sku": 1, "seq": 9}}},
    "cmd_commit_lapsed": {"Commit": {"reservation": {"sku": 1, "seq": 7}, "quantity": 1}},
    "cmd_extend": {"Extend": {"reservation": {"sku": 1, "seq": 6}, "by": {"secs": 1, "nanos": 0}}},
    "cmd_extend_no_deadline": {"Extend": {"reservation": res, "by": {"secs": 1, "nanos": 0}}},
    "cmd_extend_lapsed": {"Extend": {"reservation": {"sku": 1, "seq": 7}, "by": {"secs": 1, "nanos": 0}}},
    "cmd_commit_all": {"Commit": {"reservation": res, "quantity": None}},
    "cmd_commit_some": {"Commit": {"reservation": res, "quantity": 7}},
    "cmd_commit_too_many": {"Commit": {"reservation": res, "quantity": 13}},
    "cmd_adjust_shrink": {"Adjust": {"sku": 1, "lot": 1, "delta": -10, "reason": "Spoilage"}},
    "cmd_adjust_grow": {"Adjust": {"sku": 1, "lot": 2, "delta": 30, "reason": "Recount"}},
    "cmd_adjust_min": {"Adjust": {"sku": 1, "lot": 1, "delta": -9223372036854775808, "reason": "Damage"}},
    "cmd_adjust_max": {"Adjust": {"sku": 1, "lot": 1, "delta": MAX, "reason": "Other"}},
    "list_flow": [
        {"DefineSku": {"sku": 1, "policy": "Fefo"}},
        {"Receive": {"sku": 1, "lot": lot(id=1, qty=10, expires=100)}},
        {"Receive": {"sku": 1, "lot": lot(id=2, qty=10)}},
        {"Allocate": req(qty=15)},
        {"Adjust": {"sku": 1, "lot": 1, "delta": -8, "reason": "Spoilage"}},
        {"Commit": {"reservation": res, "quantity": 3}},
        {"Take": req(qty=50, fill="Partial")},
    ],
    "list_empty": [],
    "snapshot": snapshot,
    "snapshot_too_large": dict(snapshot, totals=dict(quantities, held=MAX + 1)),
    "outcome_allocated": {"Allocated": {"reservation": res, "lines": [{"lot": 1, "quantity": 4}], "version": 3}},
    "outcome_adjusted": {"Adjusted": {"sku": 1, "lot": 1, "delta": -3, "reason": "Expiry", "quantities": quantities,
                                      "shortfalls": [{"reservation": res, "quantity": 2}], "version": 9}},
    "outcome_committed": {"Committed": {"reservation": res, "committed": [{"lot": 1, "quantity": 1}], "returned": [], "version": 2}},
    "error_insufficient": {"Allocate": {"Insufficient": {"sku": 1, "requested": 5, "available": 2}}},
    "error_exceeds_held": {"Commit": {"ExceedsHeld": {"id": res, "requested": 5, "held": 2}}},
    "error_out_of_range": {"Adjust": {"OutOfRange": {"sku": 1, "lot": 1, "on_hand": 0, "delta": -1}}},
    "request": req(qty=12, fill="Partial"),
    "newlot": lot(id=4, qty=2, expires=10),
    "quantity": 1500,
    "quantity_max": MAX,
    "quantity_past_max": MAX + 1,
    "quantity_old_max": (1 << 48) - 1,  # the maximum before it was 2^40 - 1
}
raw = {
    "bad_truncated": b'{"Allocate":{"sku":1,"quantity":',
    "bad_negative_quantity": b'{"Take":{"sku":1,"quantity":-1,"fill":"Partial","policy":null,"min_shelf_life":{"secs":0,"nanos":0}}}',
    "bad_float": b'{"Release":{"reservation":{"sku":1.5,"seq":1}}}',
    "bad_unknown_variant": b'{"Refund":{"sku":1}}',
    "bad_delta_overflow": b'{"Adjust":{"sku":1,"lot":1,"delta":9223372036854775808,"reason":"Other"}}',
    "bad_nanos_overflow": b'{"Allocate":{"sku":1,"quantity":1,"fill":"Partial","policy":null,"min_shelf_life":{"secs":18446744073709551615,"nanos":4000000000}}}',
    "bad_not_utf8": b'"\xff\xfe"',
    "bad_deep_nesting": b"[" * 200 + b"]" * 200,
    "bad_big_number": b"1" + b"0" * 40,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "decode")
os.makedirs(out, exist_ok=True)
for name, value in values.items():
    with open(os.path.join(out, "seed_" + name + ".json"), "wb") as f:
        f.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
for name, data in raw.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(data)
print(len(values) + len(raw), "decode seeds written to", os.path.normpath(out))
