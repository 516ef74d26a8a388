#!/usr/bin/env python3
"""Stats lag: time from an acknowledged contract or follow-up write to the statistic showing it.

    scripts/bench/stats_lag.py --port 9015 --token TOKEN [--writes 200] [--writers 4]

Python 3 standard library only. Creates an organization with a potential record (the watched
one) and another with a potential record for the load; starts --writers threads that keep
creating follow-up records on the load's potential record (steady writes, so StatsService keeps
applying events), and then --writes times, alternately, creates a contract or a follow-up record
in the watched organization: after the write is acknowledged (HTTP 200), it polls
`GET /api/stats/sign` (or `/api/stats/follow`) with `organization_ids` of the watched
organization until its count includes the write, and records the time from the acknowledgement.
Prints the median, p90, p99 and maximum per kind and overall, and the write rate of the load.
Exit status 1 on any failed answer or a write not shown within 10 s.
"""

import argparse
import sys
import time
from datetime import datetime, timedelta

from event_lag import Client, FollowLoad, now, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()

    client = Client(args.port, args.token)
    stamp = int(time.time() * 1000)
    watched = client.call("POST", "/api/customers/organization", {"groupName": "stats-lag-%d" % stamp})["data"]["id"]
    loaded = client.call("POST", "/api/customers/organization", {"groupName": "stats-load-%d" % stamp})["data"]["id"]
    potential = client.call("POST", "/api/record/potential", {"organization_id": watched, "director_id": 1, "record_time": now()})["data"]["id"]
    load_potential = client.call("POST", "/api/record/potential", {"organization_id": loaded, "director_id": 1, "record_time": now()})["data"]["id"]
    # A three-day window around now: the poll itself stays cheap (a few blocks and rows), so
    # what is measured is the event's way, not the cost of the question.
    today = datetime.now().date()
    window = "organization_ids=%d&start_time=%s&end_time=%s%%2023:59:59" % (
        watched, today - timedelta(days=1), today + timedelta(days=1))

    def count(path, field):
        rows = client.call("GET", "%s?%s" % (path, window))["data"]
        if path.endswith("/follow"):
            rows = rows[0]
        return sum(row[field] for row in rows if row.get("organization_id") == watched)

    load = FollowLoad(args.port, args.token, load_potential, args.writers)
    load.start()
    lags = {"contract": [], "follow": []}
    expected = {"contract": 0, "follow": 0}
    try:
        for i in range(args.writes):
            kind = "contract" if i % 2 == 0 else "follow"
            if kind == "contract":
                client.call("POST", "/api/contract/contract", {"organization_id": watched, "name": "lag-%d" % i, "amount": "1.00", "sign_time": now()})
                path, field = "/api/stats/sign", "sign_count"
            else:
                client.call("POST", "/api/record/follow", {"protent_id": potential, "follower_id": [1], "record_time": now()})
                path, field = "/api/stats/follow", "follow_count"
            acknowledged = time.monotonic()
            expected[kind] += 1
            while count(path, field) < expected[kind]:
                if time.monotonic() - acknowledged > 10:
                    raise RuntimeError("%s write %d did not show within 10 s" % (kind, i))
            lags[kind].append((time.monotonic() - acknowledged) * 1000)
    except Exception as error:  # noqa: BLE001
        load.finish_quietly()
        print("stats-lag: FAILED: %s" % error, file=sys.stderr)
        return 1
    try:
        rate = load.finish()
    except RuntimeError as error:
        print("stats-lag: %s" % error, file=sys.stderr)
        return 1
    print(summary("stats lag, contract -> /api/stats/sign", lags["contract"]))
    print(summary("stats lag, follow-up -> /api/stats/follow", lags["follow"]))
    print(summary("stats lag, both", lags["contract"] + lags["follow"])
          + "; " + rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
