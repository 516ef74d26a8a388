#!/usr/bin/env python3
"""Seeds the CRM with records through the HTTP API, for the benchmark's record scenarios.

    scripts/bench/seed_records.py --port 9015 --token TOKEN [--organizations 1000]
        [--potentials 5000] [--follows 10000] [--follow-days 6] [--customers 200] [--env FILE]

Python 3 standard library only; POSTs with the same worker pool as seed.py (--connections
keep-alive connections, default 16):

    /api/customers/organization  {"groupName"}                                   (--organizations)
    /api/customers/customers     {"realName"}                                    (--customers)
    /api/record/potential        {"organization_id", "director_id": 1, "record_time"}   (--potentials,
                                 spread evenly over the organizations)
    /api/record/follow           {"protent_id", "follower_id": [1], "customers_id": [1 or 2 ids],
                                 "record_time", "event"}                          (--follows, spread
                                 evenly over the potential records, so over the organizations)

Every `record_time` is a random time in the last six days, inside the lists' default window
(the last week); with --follow-days N the follow-up records' times spread over the last N days
instead (the stats-follow scenario uses 60). With --env FILE it writes SEED_RECORD_ORGANIZATION_ID (an organization with
records), SEED_POTENTIAL_ID, SEED_FOLLOWS, SEED_POTENTIALS and SEED_RECORD_SECONDS for
scripts/bench.sh. Any failed answer stops the seeding with exit status 1.
"""

import argparse
import os
import random
import sys
import time
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed import SeedError, post_all  # noqa: E402  (the worker pool of seed.py)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--organizations", type=int, default=1000)
    parser.add_argument("--potentials", type=int, default=5000)
    parser.add_argument("--follows", type=int, default=10000)
    parser.add_argument("--follow-days", type=int, default=6)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--random-seed", type=int, default=2)
    parser.add_argument("--env", help="also write SEED_* shell assignments to this file")
    args = parser.parse_args()
    if min(args.organizations, args.potentials, args.follows, args.customers) < 1:
        parser.error("every count must be at least 1")

    rng = random.Random(args.random_seed)
    now = datetime.now()

    def record_time(days=6):
        return (now - timedelta(seconds=rng.randrange(days * 86400))).strftime("%Y-%m-%d %H:%M:%S")

    def step(label, path, bodies):
        started = time.monotonic()
        ids = post_all(args.port, args.token, path, bodies, args.connections)
        seconds = time.monotonic() - started
        print("seeded %d %s in %.1f s (%.0f/s, %d connections)" % (len(ids), label, seconds, len(ids) / seconds, args.connections), flush=True)
        return ids, seconds

    try:
        orgs, s1 = step("organizations", "/api/customers/organization",
                        [{"groupName": "压测单位%d" % i} for i in range(args.organizations)])
        customers, s2 = step("customers", "/api/customers/customers",
                             [{"realName": "压测联系人%d" % i} for i in range(args.customers)])
        potentials, s3 = step("potential records", "/api/record/potential",
                              [{"organization_id": orgs[i % len(orgs)], "director_id": 1, "record_time": record_time()}
                               for i in range(args.potentials)])
        follows, s4 = step("follow-up records", "/api/record/follow",
                           [{"protent_id": potentials[i % len(potentials)], "follower_id": [1],
                             "customers_id": rng.sample(customers, min(len(customers), rng.choice([1, 2]))),
                             "record_time": record_time(args.follow_days), "event": rng.randint(1, 5)}
                            for i in range(args.follows)])
    except SeedError as error:
        print("seed: FAILED: %s" % error, file=sys.stderr)
        return 1
    if args.env:
        with open(args.env, "w") as f:
            f.write("SEED_RECORD_ORGANIZATION_ID=%d\nSEED_POTENTIAL_ID=%d\nSEED_FOLLOWS=%d\nSEED_POTENTIALS=%d\nSEED_RECORD_SECONDS=%.1f\n"
                    % (orgs[0], potentials[0], len(follows), len(potentials), s1 + s2 + s3 + s4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
