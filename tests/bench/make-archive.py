#!/usr/bin/env python3
"""A synthetic CloudTrail archive for the replay benchmark (README, "Performance: replay"):
FILES gzipped log files of RECORDS records each, laid out as a trail writes them
(AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/...json.gz), SHARE of them
AssumeRoleWithWebIdentity calls taken from events/ (fresh eventIDs, subjects varied), the
rest other services' calls shaped like the replay sample's. Deterministic (seeded).
Standard library only; nothing is downloaded.

    python3 tests/bench/make-archive.py target/bench-archive              # 200 x 2000, 5%
    python3 tests/bench/make-archive.py DIR --files 20 --records 500
"""
import argparse
import copy
import gzip
import json
import random
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
NOT_SCENARIOS = {"accounts", "changes", "replay", "sns"}


def web_identity_records():
    out = []
    for path in sorted(EVENTS.rglob("*.json")):
        if path.relative_to(EVENTS).parts[0] in NOT_SCENARIOS:
            continue
        doc = json.loads(path.read_text())
        out.append(doc.get("detail", doc))
    return out


def other_records():
    replay = json.loads((EVENTS / "replay" / "cloudtrail-log-file-mixed.json").read_text())["Records"]
    return [r for r in replay if r.get("eventName") != "AssumeRoleWithWebIdentity"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--files", type=int, default=200)
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--share", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = random.Random(args.seed)
    mine, others = web_identity_records(), other_records()
    plain = 0
    for f in range(args.files):
        account = ["111122223333", "444455556666", "777788889999"][f % 3]
        region = ["us-east-1", "eu-west-1"][f % 2]
        day = 1 + f % 28
        records = []
        for n in range(args.records):
            template = rng.choice(mine) if rng.random() < args.share else rng.choice(others)
            record = copy.deepcopy(template)
            record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
            record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128)))
            record["eventTime"] = f"2026-11-{day:02d}T{n * 86400 // args.records // 3600:02d}:{n % 60:02d}:{(n * 7) % 60:02d}Z"
            records.append(record)
        body = json.dumps({"Records": records}).encode()
        plain += len(body)
        folder = args.out / "AWSLogs" / account / "CloudTrail" / region / "2026" / "11" / f"{day:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_202611{day:02d}T0000Z_{f:04d}.json.gz"
        (folder / name).write_bytes(gzip.compress(body, compresslevel=6))
    print(json.dumps({"files": args.files, "records": args.files * args.records, "json_bytes": plain}))


if __name__ == "__main__":
    main()
