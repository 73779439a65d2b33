#!/usr/bin/env python3
"""The cluster test's client side (tests/cluster/cluster.sh), stdlib only.

    cluster.py token URL                      print a token issued by URL's identity
    cluster.py create URL TOKEN NAME          create an image, print its id
    cluster.py upload URL TOKEN ID FILE [S]   upload FILE as ID's data, spread over S seconds
    cluster.py download URL TOKEN ID FILE     download ID's data into FILE
    cluster.py wrk FILE                       "requests failed rps p50_us p99_us" of wrk's output
    cluster.py hastat STATS_URL SERVER [FIELD...]  a server's status (UP, DOWN...), or other
                                              fields, in HAProxy's CSV stats

URL is the service's root (http://10.77.0.11:8080). Every request carries
X-Phase, from the environment's CLUSTER_PHASE, so the backends' access logs
say which step of the test a request belongs to.
"""
import http.client
import json
import os
import re
import sys
import time
import urllib.parse

AUTH = {
    "auth": {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": "admin", "domain": {"name": "Default"}, "password": "admin-secret"}
            },
        },
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }
}


def die(message):
    print("cluster.py: " + message, file=sys.stderr)
    sys.exit(1)


def connect(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60), parts.path.rstrip("/")


def headers(token=None, **more):
    result = {"X-Phase": os.environ.get("CLUSTER_PHASE", "-")}
    if token:
        result["X-Auth-Token"] = token
    result.update(more)
    return result


def request(url, method, path, body=None, **kwargs):
    conn, root = connect(url)
    conn.request(method, root + path, body=body, headers=headers(**kwargs))
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def token(url):
    body = json.dumps(AUTH).encode()
    response, data = request(url, "POST", "/identity/v3/auth/tokens", body,
                             **{"Content-Type": "application/json"})
    if response.status != 201 or not response.getheader("X-Subject-Token"):
        die(f"token issue at {url}: {response.status} {data[:300]!r}")
    print(response.getheader("X-Subject-Token"))


def create(url, tok, name):
    body = json.dumps({"name": name, "disk_format": "raw", "container_format": "bare"}).encode()
    response, data = request(url, "POST", "/image/v2/images", body, token=tok,
                             **{"Content-Type": "application/json"})
    if response.status != 201:
        die(f"image create at {url}: {response.status} {data[:300]!r}")
    print(json.loads(data)["id"])


def upload(url, tok, image_id, path, seconds=0.0):
    """PUT the file; with seconds > 0 in 64 pieces spread over that time, so
    the upload is in flight on one backend while the test does other things.
    Prints "started" (flushed) once the head and the first piece are sent."""
    with open(path, "rb") as f:
        data = f.read()
    conn, root = connect(url)
    conn.putrequest("PUT", f"{root}/image/v2/images/{image_id}/file")
    for key, value in headers(tok, **{"Content-Type": "application/octet-stream",
                                      "Content-Length": str(len(data))}).items():
        conn.putheader(key, value)
    conn.endheaders()
    pieces = 64 if seconds > 0 else 1
    step = (len(data) + pieces - 1) // pieces
    for i in range(pieces):
        conn.send(data[i * step:(i + 1) * step])
        if i == 0:
            print("started", flush=True)
        if seconds > 0:
            time.sleep(seconds / pieces)
    response = conn.getresponse()
    answer = response.read()
    if response.status != 204:
        die(f"upload of {image_id} at {url}: {response.status} {answer[:300]!r}")
    print("uploaded", flush=True)


def download(url, tok, image_id, path):
    response, data = request(url, "GET", f"/image/v2/images/{image_id}/file", token=tok)
    if response.status != 200:
        die(f"download of {image_id} at {url}: {response.status} {data[:300]!r}")
    with open(path, "wb") as f:
        f.write(data)


def microseconds(value):
    number, unit = re.fullmatch(r"([0-9.]+)([a-z]+)", value).groups()
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]


def wrk(path):
    """wrk's summary: requests, failed ones (non-2xx/3xx answers and socket
    errors of every kind), req/s, p50 and p99 in microseconds (0 without
    --latency)."""
    text = open(path).read()
    requests = re.search(r"^\s*(\d+) requests in", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    if not requests or not rps:
        die(f"cannot read wrk's output {path}:\n{text}")
    failed = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if non2xx:
        failed += int(non2xx.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if errors:
        failed += sum(int(n) for n in errors.groups())
    p50 = re.search(r"^\s*50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    print(requests.group(1), failed, rps.group(1),
          round(microseconds(p50.group(1))) if p50 else 0,
          round(microseconds(p99.group(1))) if p99 else 0)


def hastat(stats_url, server, *fields):
    """Fields (default: status) of a server's row in HAProxy's CSV stats;
    the server BACKEND is the backend's own row (its totals)."""
    conn, root = connect(stats_url)
    conn.request("GET", root + ";csv")
    response = conn.getresponse()
    lines = response.read().decode().splitlines()
    names = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(names, line.split(",")))
        if row.get("svname") == server:
            print(*(row[field] or "0" for field in (fields or ["status"])))
            return
    die(f"no server {server} in HAProxy's stats")


COMMANDS = {"token": token, "create": create, "upload": upload, "download": download,
            "wrk": wrk, "hastat": hastat}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(__doc__)
    args = sys.argv[2:]
    if sys.argv[1] == "upload" and len(args) == 5:
        args[4] = float(args[4])
    COMMANDS[sys.argv[1]](*args)
