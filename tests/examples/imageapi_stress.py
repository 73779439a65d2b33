#!/usr/bin/env python3
"""examples/imageapi under load and under a crash, over plain HTTP.

    imageapi_stress.py load  BASE_URL MASTER_PID COUNT MEGABYTES
    imageapi_stress.py crash BASE_URL MASTER_PID STATE_DIR

load: COUNT uploads of MEGABYTES each at once, through the server's workers,
while every worker's resident memory is sampled; every image must end
active with the checksum of what was sent, and no worker may grow by more
than a small fixed bound (the data streams to disk, it is never held).
Prints each worker's RSS before, at its peak and after.

crash: an upload is started and, half sent, the worker receiving it is
killed with SIGKILL. The image must not be active; the service must keep
answering (the master starts a new worker); a retry of the upload must
succeed with the right checksum.
"""
import hashlib
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

CHUNK = 256 * 1024
# A worker streaming uploads to disk holds buffers, not images: its RSS may
# grow by this much at most, whatever the uploads' total size.
FLAT_BOUND_MB = 48
# IMAGEAPI_RSS_BOUND_MB overrides it; 0 reports without judging (the
# sanitizers keep freed memory on purpose).
FLAT_BOUND_MB = int(os.environ.get("IMAGEAPI_RSS_BOUND_MB", FLAT_BOUND_MB))


def fail(message):
    print("imageapi_stress: " + message, file=sys.stderr)
    sys.exit(1)


class Service:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.token = None

    def request(self, method, path, body=None, headers=None, timeout=120):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        all_headers = {"Accept": "application/json"}
        if self.token:
            all_headers["X-Auth-Token"] = self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def login(self):
        auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "admin-secret"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        response, data = self.request("POST", "/identity/v3/auth/tokens", auth)
        if response.status != 201:
            fail("no token: %d %s" % (response.status, data[:200]))
        self.token = response.getheader("X-Subject-Token")

    def create_image(self, name):
        response, data = self.request("POST", "/image/v2/images", {
            "name": name, "disk_format": "raw", "container_format": "bare"})
        if response.status != 201:
            fail("image create: %d %s" % (response.status, data[:200]))
        return json.loads(data)["id"]

    def image(self, image_id):
        response, data = self.request("GET", "/image/v2/images/" + image_id)
        if response.status != 200:
            fail("image show %s: %d %s" % (image_id, response.status, data[:200]))
        return json.loads(data)


def pattern(index, megabytes):
    """The md5 and size of upload index's bytes (chunks())."""
    md5 = hashlib.md5()
    for piece in chunks(index, megabytes):
        md5.update(piece)
    return md5.hexdigest(), megabytes * 1024 * 1024


def chunks(index, megabytes, stop_after=None):
    """Upload index's bytes, chunk by chunk: every chunk differs (its
    number is written into it); stop_after ends them early."""
    seed = hashlib.sha512(b"imageapi-%d" % index).digest()
    block = (seed * (CHUNK // len(seed) + 1))[:CHUNK]
    total = megabytes * 1024 * 1024
    sent = 0
    while sent < total:
        if stop_after is not None and sent >= stop_after:
            return
        piece = (sent // CHUNK).to_bytes(8, "big") + block[8:]
        piece = piece[: total - sent]
        sent += len(piece)
        yield piece


def upload(service, image_id, index, megabytes, stop_after=None, on_stop=None):
    """PUT the image's data; returns the status (None when stopped early)."""
    total = megabytes * 1024 * 1024
    conn = http.client.HTTPConnection(service.host, service.port, timeout=300)
    conn.putrequest("PUT", "/image/v2/images/%s/file" % image_id)
    conn.putheader("X-Auth-Token", service.token)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(total))
    conn.endheaders()
    for piece in chunks(index, megabytes, stop_after):
        conn.send(piece)
    if stop_after is not None:
        on_stop()
        try:
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            pass
        conn.close()
        return None
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def workers(master):
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        return [int(p) for p in f.read().split()]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def load(base, master, count, megabytes):
    service = Service(base)
    service.login()
    pids = workers(master)
    if not pids:
        fail("csgi-serve %d has no workers" % master)
    before = {pid: rss_kb(pid) for pid in pids}
    peak = dict(before)
    ids = [service.create_image("load-%d" % i) for i in range(count)]
    expected = [pattern(i, megabytes) for i in range(count)]

    statuses = [None] * count
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in pids:
                value = rss_kb(pid)
                if value and value > peak[pid]:
                    peak[pid] = value
            time.sleep(0.05)

    def one(i):
        statuses[i] = upload(service, ids[i], i, megabytes)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    after = {pid: rss_kb(pid) for pid in pids}

    total_mb = count * megabytes
    print("%d uploads of %d MB through %d workers: %.1f s, %.0f MB/s"
          % (count, megabytes, len(pids), elapsed, total_mb / elapsed))
    for pid in pids:
        print("worker %d RSS: before %d KB, peak %d KB (+%d KB), after %d KB"
              % (pid, before[pid], peak[pid], peak[pid] - before[pid], after[pid] or 0))
    bad = [s for s in statuses if s != 204]
    if bad:
        fail("uploads answered %s" % bad)
    for i, image_id in enumerate(ids):
        image = service.image(image_id)
        md5, size = expected[i]
        if image["status"] != "active" or image["checksum"] != md5 or image["size"] != size:
            fail("image %d: %s" % (i, json.dumps(image)))
    print("every image active with the checksum of what was sent")
    for pid in pids:
        grown_mb = (peak[pid] - before[pid]) / 1024
        if FLAT_BOUND_MB and grown_mb > FLAT_BOUND_MB:
            fail("worker %d grew by %.1f MB during %d MB of uploads" % (pid, grown_mb, total_mb))
    for image_id in ids:
        service.request("DELETE", "/image/v2/images/" + image_id)


def crash(base, master, state_dir):
    service = Service(base)
    service.login()
    image_id = service.create_image("crash")
    megabytes = 64
    victim = []

    def kill_receiver():
        # the worker receiving the upload holds the partial file open
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not victim:
            for pid in workers(master):
                try:
                    fds = os.listdir("/proc/%d/fd" % pid)
                except OSError:
                    continue
                for fd in fds:
                    try:
                        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        continue
                    if image_id in target and target.endswith(".partial"):
                        victim.append(pid)
                        break
            time.sleep(0.05)
        if not victim:
            fail("no worker holds %s's partial data" % image_id)
        os.kill(victim[0], signal.SIGKILL)
        print("killed worker %d half-way through the upload" % victim[0])

    upload(service, image_id, 7, megabytes, stop_after=megabytes * 1024 * 1024 // 2,
           on_stop=kill_receiver)

    # The service keeps answering: the other worker, then a new one.
    deadline = time.monotonic() + 20
    while True:
        try:
            image = service.image(image_id)
            break
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                fail("the service stopped answering after the worker was killed")
            time.sleep(0.1)
    if image["status"] == "active":
        fail("a killed upload left the image active: %s" % json.dumps(image))
    print("after the kill the image is %s" % image["status"])
    for _ in range(20):
        response, _ = service.request("GET", "/image/v2/images")
        if response.status != 200:
            fail("GET /v2/images answered %d after the kill" % response.status)
    leftovers = [n for n in os.listdir(os.path.join(state_dir, "data")) if image_id in n]
    status = upload(service, image_id, 7, megabytes)
    if status != 204:
        fail("the retried upload answered %s" % status)
    image = service.image(image_id)
    md5, size = pattern(7, megabytes)
    if image["status"] != "active" or image["checksum"] != md5 or image["size"] != size:
        fail("the retried upload: %s" % json.dumps(image))
    print("data files of the image after the kill: %s; the retry made it active" % leftovers)
    if victim[0] in workers(master):
        fail("the killed worker is still listed")
    print("the master replaced the worker: %s" % workers(master))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "load":
        load(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) == 5 and sys.argv[1] == "crash":
        crash(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
