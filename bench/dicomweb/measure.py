#!/usr/bin/env python3
"""Times one DICOMweb server the way OHIF uses it: QIDO study searches over
the study list, a series' metadata, and frames fetched by concurrent
clients. Every request keeps its connection (as a browser does); times are
wall-clock on this machine. Prints one JSON object.

usage: measure.py --base http://127.0.0.1:8042/dicom-web [--token T]
                  --study UID --series UID [--clients 4] [--runs 20]
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

INCLUDE = "includefield=00081030%2C00080060%2C00080090%2C00100030"
SEARCHES = {
    "first page (OHIF's study list)": f"/studies?limit=101&offset=0&fuzzymatching=false&{INCLUDE}",
    "PatientName=*Wei12* ": f"/studies?PatientName=*Wei12*&limit=101&offset=0&fuzzymatching=false&{INCLUDE}",
    "StudyDate one month": f"/studies?StudyDate=20250301-20250331&limit=101&offset=0&{INCLUDE}",
    "offset 9000": f"/studies?limit=101&offset=9000&{INCLUDE}",
}
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


class Client:
    def __init__(self, base, token):
        url = urllib.parse.urlsplit(base)
        self.prefix = url.path.rstrip("/")
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path, accept="application/dicom+json"):
        self.connection.request("GET", self.prefix + path, headers={**self.headers, "Accept": accept})
        response = self.connection.getresponse()
        body = response.read()
        return response.status, body


def timed(client, path, accept="application/dicom+json"):
    start = time.perf_counter()
    status, body = client.get(path, accept)
    return (time.perf_counter() - start) * 1000, status, body


def count(status, body):
    return 0 if status == 204 else len(json.loads(body))


def qido(client, runs):
    results = {}
    for name, path in SEARCHES.items():
        first_ms, status, body = timed(client, path)
        times = [timed(client, path)[0] for _ in range(runs)]
        results[name.strip()] = {"status": status, "matches": count(status, body), "first_ms": round(first_ms, 2), "median_ms": round(statistics.median(times), 2)}
    return results


def metadata(client, study, series, runs):
    path = f"/studies/{study}/series/{series}/metadata"
    first_ms, status, body = timed(client, path)
    times = [timed(client, path)[0] for _ in range(runs)]
    return {"status": status, "instances": len(json.loads(body)), "bytes": len(body), "first_ms": round(first_ms, 1), "median_ms": round(statistics.median(times), 1)}


def frames(base, token, study, series, instances, clients):
    """Each client fetches frame 1 of every instance of the series."""
    statuses, sizes, errors = {}, [], []
    lock = threading.Lock()

    def run():
        client = Client(base, token)
        for sop in instances:
            try:
                status, body = client.get(f"/studies/{study}/series/{series}/instances/{sop}/frames/1", FRAMES_ACCEPT)
            except Exception as e:  # a server that drops the connection is a result too
                with lock:
                    errors.append(str(e))
                client = Client(base, token)
                continue
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                sizes.append(len(body))

    threads = [threading.Thread(target=run) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    total = clients * len(instances)
    return {
        "clients": clients, "frames": total, "seconds": round(seconds, 2), "frames_per_s": round(total / seconds, 1),
        "mb_per_s": round(sum(sizes) / seconds / 1e6, 1), "statuses": statuses, "errors": errors[:3],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token")
    parser.add_argument("--study", required=True)
    parser.add_argument("--series", required=True)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    client = Client(args.base, args.token)
    status, body = client.get(f"/studies/{args.study}/series/{args.series}/instances?limit=1000")
    instances = [item["00080018"]["Value"][0] for item in json.loads(body)]
    result = {
        "qido": qido(client, args.runs),
        "metadata": metadata(client, args.study, args.series, max(3, args.runs // 4)),
        "frames": frames(args.base, args.token, args.study, args.series, instances, args.clients),
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
