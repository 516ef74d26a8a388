#!/usr/bin/env python3
"""Event lag: time from an acknowledged employee rename to the new name in a follow-up list.

    scripts/bench/event_lag.py --port 9015 --token TOKEN --potential ID [--renames 200] [--writers 4]

Python 3 standard library only. Creates an employee, a potential record (in the organization of
potential record ID) and a follow-up record naming the employee as follower, then starts --writers threads that keep creating follow-up records
on potential record ID (the steady write load), and renames the employee --renames times: after each rename is
acknowledged (HTTP 200), it polls `GET /api/record/follow?protent_id=…` until the follower's new
name shows, and records the time from the acknowledgement. Prints the median, p90, p99 and
maximum, and the write rate of the load. Exit status 1 on any failed answer.
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from datetime import datetime


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        self.conn.request(method, path, data, headers)
        response = self.conn.getresponse()
        answer = json.loads(response.read().decode())
        if response.will_close:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if response.status != 200 or answer.get("status") != 0:
            raise RuntimeError("%s %s answered %d: %s" % (method, path, response.status, answer))
        return answer


def now():
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def summary(label, lags, unit="writes"):
    """`LABEL over N UNIT: median, p90, p99, max` of lags in milliseconds."""
    lags = sorted(lags)
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    return "%s over %d %s: median %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        label, len(lags), unit, statistics.median(lags), p(0.90), p(0.99), lags[-1])


class FollowLoad:
    """The steady write load of the lag scripts: WRITERS threads, each with its own connection,
    creating follow-up records on one potential record until stopped."""

    def __init__(self, port, token, potential, writers):
        self.port, self.token, self.potential, self.writers = port, token, potential, writers
        self.stop = threading.Event()
        self.written = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, daemon=True) for _ in range(writers)]

    def write(self):
        c = Client(self.port, self.token)
        try:
            while not self.stop.is_set():
                c.call("POST", "/api/record/follow", {"protent_id": self.potential, "follower_id": [1], "record_time": now()})
                with self.lock:
                    self.written += 1
        except Exception as error:  # noqa: BLE001
            self.failures.append(repr(error))

    def start(self):
        for t in self.threads:
            t.start()
        self.started = time.monotonic()

    def finish(self):
        """Stops the writers; answers the rate as text, or raises when a writer failed."""
        self.finish_quietly()
        seconds = time.monotonic() - self.started
        if self.failures:
            raise RuntimeError("a writer FAILED: %s" % self.failures[0])
        return "write load %.0f follow-up records/s (%d writers)" % (self.written / seconds, self.writers)

    def finish_quietly(self):
        """Stops the writers after the measurement itself failed."""
        self.stop.set()
        for t in self.threads:
            t.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--potential", type=int, required=True)
    parser.add_argument("--renames", type=int, default=200)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()

    client = Client(args.port, args.token)
    phone = "139%08d" % (int(time.time() * 1000) % 100_000_000)
    employee = client.call("POST", "/api/user/user", {"phoneNumber": phone, "group_id": [1], "realName": "lag-0"})["data"]["id"]
    # Its own potential record (same organization), so the load's records never push it off the page.
    organization = client.call("GET", "/api/record/potential?potent_id=%d&status=all&start_time=2000-01-01" % args.potential)["data"][0]["organization_id"]
    watched = client.call("POST", "/api/record/potential", {"organization_id": organization, "director_id": 1, "record_time": now()})["data"]["id"]
    client.call("POST", "/api/record/follow", {"protent_id": watched, "follower_id": [employee], "record_time": now()})

    load = FollowLoad(args.port, args.token, args.potential, args.writers)
    load.start()
    lags = []
    path = "/api/record/follow?protent_id=%d" % watched
    try:
        for i in range(1, args.renames + 1):
            name = "lag-%d" % i
            client.call("POST", "/api/user/user", {"user_id": employee, "realName": name})
            acknowledged = time.monotonic()
            while True:
                rows = client.call("GET", path)["data"]
                if any(row.get("follower_ids") == [employee] and row.get("follower_name") == [name] for row in rows):
                    lags.append((time.monotonic() - acknowledged) * 1000)
                    break
                if time.monotonic() - acknowledged > 10:
                    raise RuntimeError("rename %d did not show within 10 s" % i)
    except Exception as error:  # noqa: BLE001
        load.finish_quietly()
        print("event-lag: FAILED: %s" % error, file=sys.stderr)
        return 1
    try:
        rate = load.finish()
    except RuntimeError as error:
        print("event-lag: %s" % error, file=sys.stderr)
        return 1
    print(summary("event lag", lags, "renames") + "; " + rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
