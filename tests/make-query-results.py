#!/usr/bin/env python3
"""Writes events/replay/{athena-result.csv,athena-unload.jsonl,lake-get-query-results.json}:
every scenario sample of events/ as the engines return the columns `oidc-watch query`
selects. Standard library only; run from the repository root after adding a sample.

The shapes follow the engines' documented output:
* Athena result CSV (the `<QueryExecutionId>.csv` in the query result location, and the
  console's "Download results"): a header row, every value in double quotes (a quote
  inside doubled), NULL as an empty unquoted field, rows separated by `\n`. The CloudTrail
  table (CloudTrailSerde, AWS docs "Querying AWS CloudTrail logs") keeps eventtime as
  CloudTrail wrote it and requestparameters/responseelements/additionaleventdata as JSON
  text; readonly is the text `true`/`false`.
* Athena UNLOAD ... WITH (format = 'JSON'): one JSON object per line, keys the column
  names, NULL columns left out.
* CloudTrail Lake GetQueryResults (`aws cloudtrail get-query-results --query-id ...`):
  `{"QueryStatus": "FINISHED", "QueryStatistics": {...}, "QueryResultRows": [[{"col":
  "value"}, ...], ...]}`, every value a string, eventTime as `YYYY-MM-DD HH:MM:SS.000`,
  the map columns (requestParameters, ...) as the JSON text json_format gives, whose map
  values are strings (so nested objects are JSON text and numbers are quoted).
"""
import csv
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
OUT = EVENTS / "replay"
NOT_SCENARIOS = {"accounts", "changes", "replay", "sns"}
COLUMNS = ["eventid", "eventtime", "eventsource", "eventname", "awsregion", "sourceipaddress", "useragent",
           "errorcode", "errormessage", "requestid", "recipientaccountid", "readonly", "useridentity_type",
           "useridentity_principalid", "useridentity_username", "requestparameters", "responseelements",
           "additionaleventdata", "resource_arn"]


def records():
    for path in sorted(EVENTS.rglob("*.json")):
        if path.relative_to(EVENTS).parts[0] in NOT_SCENARIOS:
            continue
        doc = json.loads(path.read_text())
        yield doc.get("detail", doc)


def columns(r: dict) -> dict:
    ui = r.get("userIdentity") or {}
    text = lambda v: None if v is None else json.dumps(v, separators=(",", ":"))
    ro = r.get("readOnly")
    return {
        "eventid": r.get("eventID"), "eventtime": r.get("eventTime"), "eventsource": r.get("eventSource"),
        "eventname": r.get("eventName"), "awsregion": r.get("awsRegion"),
        "sourceipaddress": r.get("sourceIPAddress"), "useragent": r.get("userAgent"),
        "errorcode": r.get("errorCode"), "errormessage": r.get("errorMessage"), "requestid": r.get("requestID"),
        "recipientaccountid": r.get("recipientAccountId"),
        "readonly": None if ro is None else str(ro).lower(),
        "useridentity_type": ui.get("type"), "useridentity_principalid": ui.get("principalId"),
        "useridentity_username": ui.get("userName"),
        "requestparameters": text(r.get("requestParameters")),
        "responseelements": text(r.get("responseElements")),
        "additionaleventdata": text(r.get("additionalEventData")),
        "resource_arn": next((x.get("ARN") for x in (r.get("resources") or [])[:1]), None),
    }


def lake_map(value):
    """A CloudTrail Lake map<string,string> as json_format prints it."""
    if not isinstance(value, dict):
        return None
    return json.dumps({k: v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                       for k, v in value.items()}, separators=(",", ":"))


def main():
    rows = [columns(r) for r in records()]
    buf = io.StringIO()
    buf.write(",".join(f'"{c}"' for c in COLUMNS) + "\n")
    for row in rows:
        cells = []
        for c in COLUMNS:
            v = row[c]
            cells.append("" if v is None else '"' + v.replace('"', '""') + '"')
        buf.write(",".join(cells) + "\n")
    (OUT / "athena-result.csv").write_text(buf.getvalue())
    # csv reads it back as it was written (a check of the quoting above).
    assert len(list(csv.reader(io.StringIO(buf.getvalue())))) == len(rows) + 1

    with (OUT / "athena-unload.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps({k: v for k, v in row.items() if v is not None}, separators=(",", ":")) + "\n")

    lake_rows = []
    for r in records():
        row = columns(r)
        t = row["eventtime"]
        if t and len(t) >= 19:
            row["eventtime"] = t[:10] + " " + t[11:19] + ".000"
        for c, key in (("requestparameters", "requestParameters"), ("responseelements", "responseElements"),
                       ("additionaleventdata", "additionalEventData")):
            row[c] = lake_map(r.get(key))
        lake_rows.append([{c: row[c]} for c in COLUMNS if row[c] is not None])
    lake = {"QueryStatus": "FINISHED",
            "QueryStatistics": {"ResultsCount": len(lake_rows), "TotalResultsCount": len(lake_rows),
                                "BytesScanned": 1048576},
            "QueryResultRows": lake_rows}
    (OUT / "lake-get-query-results.json").write_text(json.dumps(lake, indent=1) + "\n")
    print(f"{len(rows)} rows")


if __name__ == "__main__":
    main()
