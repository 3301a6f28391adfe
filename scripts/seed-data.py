#!/usr/bin/env python3
"""A generated stand-in for the home-services marketplace's current data, for `make demo`.

Writes OUT/dump/home_service_db/ the way `mongodump --out OUT/dump` lays a database out (one
COLL.bson of BSON documents back to back and one COLL.metadata.json in canonical extended JSON
v2 per collection), and OUT/uploads/ the way the app's local disk holds the uploaded files. The
documents refer to the uploads by the old local URLs and paths. Deterministic (no randomness),
standard library only: the BSON encoder below covers the types the data uses.

    scripts/seed-data.py OUT [SCALE]
"""

import json
import os
import struct
import sys


def e_name(k):
    return k.encode() + b"\x00"


class ObjectId:
    def __init__(self, n, kind):
        # 4-byte time, then a counter: sortable and unique per (kind, n).
        self.raw = struct.pack(">I", 1_700_000_000 + n) + struct.pack(">B", kind) + struct.pack(">Q", n)[1:]

    def hex(self):
        return self.raw.hex()


class Decimal:
    """A Decimal128 of `cents` / 100 (BID encoding, exponent -2)."""

    def __init__(self, cents):
        self.cents = cents


class Date:
    def __init__(self, millis):
        self.millis = millis


class Int64(int):
    pass


def element(k, v):
    if isinstance(v, bool):
        return b"\x08" + e_name(k) + (b"\x01" if v else b"\x00")
    if isinstance(v, Int64):
        return b"\x12" + e_name(k) + struct.pack("<q", v)
    if isinstance(v, int):
        return b"\x10" + e_name(k) + struct.pack("<i", v)
    if isinstance(v, float):
        return b"\x01" + e_name(k) + struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\x02" + e_name(k) + struct.pack("<i", len(b) + 1) + b + b"\x00"
    if isinstance(v, ObjectId):
        return b"\x07" + e_name(k) + v.raw
    if isinstance(v, Date):
        return b"\x09" + e_name(k) + struct.pack("<q", v.millis)
    if isinstance(v, Decimal):
        high = (6176 - 2) << 49
        return b"\x13" + e_name(k) + struct.pack("<QQ", v.cents, high)
    if v is None:
        return b"\x0a" + e_name(k)
    if isinstance(v, dict):
        return b"\x03" + e_name(k) + document(v)
    if isinstance(v, list):
        return b"\x04" + e_name(k) + document({str(i): x for i, x in enumerate(v)})
    raise TypeError(f"no BSON for {type(v)}")


def document(d):
    body = b"".join(element(k, v) for k, v in d.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def index(key, name, **opts):
    spec = {"v": {"$numberInt": "2"}, "key": {k: {"$numberInt": str(v)} if isinstance(v, int) else v for k, v in key.items()}, "name": name}
    spec.update(opts)
    return spec


DAY = 86_400_000
T0 = 1_735_689_600_000  # 2025-01-01


def main():
    out = sys.argv[1]
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    db = os.path.join(out, "dump", "home_service_db")
    uploads = os.path.join(out, "uploads")
    for d in [db, os.path.join(uploads, "images", "avatars"), os.path.join(uploads, "images", "services"), os.path.join(uploads, "documents", "licenses")]:
        os.makedirs(d, exist_ok=True)

    n_users, n_providers, n_services = 400 * scale, 80 * scale, 24
    n_bookings, n_reviews, n_payments, n_notes = 1200 * scale, 500 * scale, 900 * scale, 1600 * scale
    trades = ["plumbing", "electrical", "cleaning", "gardening", "painting", "moving"]
    collections = {}

    collections["users"] = (
        [
            {
                "_id": ObjectId(i, 1),
                "name": f"User {i}",
                "email": f"user{i}@example.com",
                "phone": f"+1555{i:07d}",
                "avatar": f"http://localhost:5000/uploads/images/avatars/user-{i}.jpg" if i % 4 else None,
                "role": "customer",
                "createdAt": Date(T0 + i * 3_600_000),
                "loginCount": Int64(i * 7),
            }
            for i in range(n_users)
        ],
        {"validator": {"$jsonSchema": {"bsonType": "object", "required": ["email"]}}, "validationLevel": "moderate"},
        [index({"email": 1}, "email_1", unique=True), index({"phone": 1}, "phone_1")],
    )
    collections["serviceproviders"] = (
        [
            {
                "_id": ObjectId(i, 2),
                "user": ObjectId(i, 1),
                "businessName": f"Fixers {i}",
                "email": f"pro{i}@example.com",
                "serviceType": trades[i % len(trades)],
                "isAvailable": i % 3 != 0,
                "rating": round(3.0 + (i % 20) / 10, 1),
                "totalRatings": i * 3,
                "location": {"type": "Point", "coordinates": [-73.99 + (i % 50) / 100, 40.70 + (i % 30) / 100]},
                "portfolio": [{"url": f"/uploads/images/services/sp-{i}-{k}.jpg", "caption": f"job {k}"} for k in range(2)],
                "licenseDocument": f"uploads\\documents\\licenses\\sp-{i}.pdf",
            }
            for i in range(n_providers)
        ],
        {},
        [index({"location": "2dsphere"}, "location_2dsphere", **{"2dsphereIndexVersion": {"$numberInt": "3"}})],
    )
    collections["services"] = (
        [{"_id": ObjectId(i, 3), "name": f"{trades[i % 6]} package {i}", "category": trades[i % 6], "basePrice": Decimal(4_900 + i * 500), "active": True} for i in range(n_services)],
        {"collation": {"locale": "en", "strength": 2}},
        [],
    )
    collections["bookings"] = (
        [
            {
                "_id": ObjectId(i, 4),
                "customer": ObjectId(i % n_users, 1),
                "provider": ObjectId(i % n_providers, 2),
                "service": ObjectId(i % n_services, 3),
                "status": ["pending", "confirmed", "completed", "cancelled"][i % 4],
                "scheduledFor": Date(T0 + (i % 365) * DAY),
                "address": {"street": f"{i} Main St", "city": "Springfield", "zip": f"{10000 + i % 900}"},
                "notes": None if i % 5 else "ring twice",
            }
            for i in range(n_bookings)
        ],
        {},
        [],
    )
    collections["reviews"] = (
        [{"_id": ObjectId(i, 5), "booking": ObjectId(i, 4), "provider": ObjectId(i % n_providers, 2), "rating": 1 + i % 5, "comment": f"review {i}", "createdAt": Date(T0 + i * DAY // 4)} for i in range(n_reviews)],
        {},
        [],
    )
    collections["payments"] = (
        [{"_id": ObjectId(i, 6), "booking": ObjectId(i, 4), "amount": Decimal(2_500 + (i * 137) % 40_000), "currency": "USD", "paidAt": Date(T0 + i * 7_200_000), "refunded": i % 17 == 0} for i in range(n_payments)],
        {},
        [],
    )
    collections["notifications"] = (
        [{"_id": ObjectId(i, 7), "user": ObjectId(i % n_users, 1), "kind": "booking_update", "read": i % 2 == 0, "payload": {"booking": ObjectId(i % n_bookings, 4), "seq": Int64(i)}, "createdAt": Date(T0 + i * 600_000)} for i in range(n_notes)],
        {},
        [],
    )

    for name, (docs, options, indexes) in collections.items():
        with open(os.path.join(db, f"{name}.bson"), "wb") as f:
            for d in docs:
                f.write(document(d))
        meta = {"options": options, "indexes": [index({"_id": 1}, "_id_")] + indexes, "uuid": ObjectId(len(name), 9).hex() + "00000000", "collectionName": name, "type": "collection"}
        with open(os.path.join(db, f"{name}.metadata.json"), "w") as f:
            json.dump(meta, f)

    # The uploaded files the documents refer to (small stand-ins with real magic numbers).
    for i in range(n_users):
        if i % 4:
            with open(os.path.join(uploads, "images", "avatars", f"user-{i}.jpg"), "wb") as f:
                f.write(b"\xff\xd8\xff\xe0" + f"avatar {i}".encode() * 40)
    for i in range(n_providers):
        for k in range(2):
            with open(os.path.join(uploads, "images", "services", f"sp-{i}-{k}.jpg"), "wb") as f:
                f.write(b"\xff\xd8\xff\xe0" + f"portfolio {i} {k}".encode() * 200)
        with open(os.path.join(uploads, "documents", "licenses", f"sp-{i}.pdf"), "wb") as f:
            f.write(b"%PDF-1.4\n" + f"license {i}\n".encode() * 100)
    total = sum(len(c[0]) for c in collections.values())
    print(f"seed data: {total} documents in {len(collections)} collections under {db}; uploads under {uploads}")


if __name__ == "__main__":
    main()
