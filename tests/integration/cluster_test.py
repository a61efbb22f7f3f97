#!/usr/bin/env python3
"""Cluster integration tests: real aspen-node processes on loopback.

Each scenario starts its own nodes (fresh data dirs under a temp dir, free ports), drives
them through their HTTP endpoint, and checks what a user would: the cluster forms, writes
on any node are readable on all, a SIGKILLed leader is replaced within two election
timeouts without losing an acknowledged write and catches up after restart, learners are
added, promoted and removed while the cluster serves, garbage on the peer port leaves a
node unaffected, credentials are checked and tickets carry no secret, SIGTERM shuts a
leader down gracefully.

Usage: cluster_test.py ASPEN_NODE [--keep]. Prints one line per check and ends with
"cluster: N passed, N failed" (the harness's format). Every process it starts, it stops.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

NODE = None
PROFILE = "balanced"
ELECTION_MAX_S = 1.0  # the balanced profile's 500-1000 ms
passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}", flush=True)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Node:
    """One aspen-node process. By default it listens on loopback with free ports; other
    suites (netem_test.py) give it its own addresses (client and peer may differ) and ports
    and a launcher prefix such as ["ip", "netns", "exec", NS], which runs it inside a
    network namespace."""

    def __init__(self, root, name, host="127.0.0.1", client=None, peer=None, launcher=(),
                 peer_host=None):
        self.name = name
        self.dir = os.path.join(root, name)
        self.host = host
        self.peer_host = peer_host or host
        self.client = client or free_port()
        self.peer = peer or free_port()
        self.launcher = list(launcher)
        self.proc = None
        self.log = os.path.join(root, name + ".log")

    @property
    def url(self):
        return f"http://{self.host}:{self.client}"

    def start(self, *extra):
        args = [*self.launcher, NODE, "--name", self.name, "--data-dir", self.dir,
                "--listen-client-urls", self.url,
                "--listen-peer-urls", f"{self.peer_host}:{self.peer}",
                "--raft-profile", PROFILE, *extra]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def term(self, timeout=15):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode if self.proc else None


def http(method, url, body=None, timeout=5, follow=True):
    """(status, body bytes, headers); follows 307 for any method when follow."""
    for _ in range(4):
        req = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            data = e.read()
            if e.code == 307 and follow and e.headers.get("Location"):
                url = e.headers["Location"]
                continue
            return e.code, data, dict(e.headers)
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
            return 0, str(e).encode(), {}
    return 0, b"too many redirects", {}


def status(n):
    code, body, _ = http("GET", n.url + "/v1/status", timeout=1)
    return json.loads(body) if code == 200 else None


def wait(cond, secs, step=0.05):
    deadline = time.time() + secs
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def leader_of(nodes):
    for n in nodes:
        if not n.alive():
            continue
        s = status(n)
        if s and s["role"] == "leader":
            return n
    return None


def voters(n):
    code, body, _ = http("GET", n.url + "/v1/cluster/members", timeout=1)
    if code != 200:
        return []
    return [m for m in json.loads(body)["members"] if m["role"] in ("leader", "voter")]


def put(n, key, value, timeout=5):
    return http("PUT", f"{n.url}/v1/kv/{key}", value.encode(), timeout=timeout)


def get(n, key, serializable=False):
    q = "?serializable" if serializable else ""
    code, body, _ = http("GET", f"{n.url}/v1/kv/{key}{q}")
    return code, body


def form_cluster(root, count=3, make=Node, extra=()):
    """Starts a founder and count - 1 joiners made by make(root, name), each with the
    extra flags; True once all are voters."""
    nodes = [make(root, f"n{i + 1}") for i in range(count)]
    nodes[0].start("--init", *extra)
    if not wait(lambda: http("GET", nodes[0].url + "/health", timeout=1)[0] == 200, 15):
        return nodes, False
    _, ticket, _ = http("GET", nodes[0].url + "/v1/cluster/ticket")
    ticket = ticket.decode().strip()
    for n in nodes[1:]:
        code, cred, _ = http("POST", nodes[0].url + "/v1/cluster/credentials?ttl=300")
        if code != 200:
            return nodes, False
        n.start("--join", ticket, "--join-credential", cred.decode().strip(), *extra)
    ok = wait(lambda: len(voters(nodes[0])) == count, 40)
    return nodes, bool(ok)


def metric(n, name):
    code, body, _ = http("GET", n.url + "/metrics", timeout=2)
    if code != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def val(i, pad=0):
    return f"v{i}" + "x" * pad


def put_many(n, prefix, count, threads=8, pad=0):
    """Writes prefix%05d = val(i, pad) for i < count through n from several threads (the
    node batches concurrent writes); returns the indices acknowledged."""
    acked = []
    lock = threading.Lock()

    def run(k):
        for i in range(k, count, threads):
            if put(n, f"{prefix}{i:05d}", val(i, pad))[0] == 200:
                with lock:
                    acked.append(i)

    ths = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return sorted(acked)


def spools(n):
    try:
        names = os.listdir(n.dir)
    except FileNotFoundError:
        return []  # not created yet
    return [f for f in names if f.startswith("snapshot.") and f.endswith(".recv")]


def stop_all(nodes):
    for n in nodes:
        n.kill()


# ---------------------------------------------------------------------------------------


def scenario_formation(root):
    nodes, ok = form_cluster(root)
    try:
        check(ok, "3-node cluster forms (init + 2 joins, promoted to voters)")
        if not ok:
            return
        revs = []
        for i, n in enumerate(nodes):
            # No redirect followed: a follower forwards the write to the leader itself.
            code, body, _ = http("PUT", f"{n.url}/v1/kv/k{i}", f"v{i}".encode(), follow=False)
            revs.append(json.loads(body).get("revision", 0) if code == 200 else 0)
            check(code == 200, f"write through {n.name} (a follower forwards it to the leader)")
        check(revs[0] > 0 and revs[1] == revs[0] + 1 and revs[2] == revs[1] + 1,
              f"forwarded writes answer with their own revisions ({revs})")
        fwd = sum(metric(n, "aspen_proposals_forwarded_total") or 0 for n in nodes)
        check(fwd == 2, f"the two followers forwarded one write each ({fwd:.0f})")
        for n in nodes:
            vals = [get(n, f"k{i}") for i in range(3)]
            check(all(c == 200 and b == f"v{i}".encode() for i, (c, b) in enumerate(vals)),
                  f"linearizable reads on {n.name} see all three writes")
        code, body, _ = http("GET", nodes[1].url + "/metrics")
        check(code == 200 and b"aspen_raft_term" in body and b"# TYPE" in body,
              "/metrics serves Prometheus text")
        code, body, _ = http("GET", nodes[2].url + "/health")
        check(code == 200 and json.loads(body)["health"] == "true", "/health on a follower")
        code, body, _ = http("GET", nodes[0].url + "/v1/kv/missing")
        check(code == 404, "a missing key is 404")
        code, body, _ = http("GET", nodes[0].url + "/v1/kv/k?prefix")
        j = json.loads(body) if code == 200 else {}
        check(code == 200 and j.get("count") == 3, "prefix listing returns the three keys")
        # The ticket holds no secret: neither a credential nor any node's identity seed.
        _, ticket, _ = http("GET", nodes[0].url + "/v1/cluster/ticket")
        raw = ticket.decode().strip().split(".", 1)[1]
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        seeds = []
        for n in nodes:
            with open(os.path.join(n.dir, "identity.key")) as f:
                for line in f:
                    if line.startswith("secret-seed "):
                        seeds.append(bytes.fromhex(line.split()[1]))
        check(len(seeds) == 3 and not any(s in blob or s.hex().encode() in blob for s in seeds),
              "the ticket contains no node's secret seed")
        # A wrong credential is refused and the joiner stops with a clear message.
        rogue = Node(root, "rogue")
        rogue.start("--join", ticket.decode().strip(), "--join-credential", "not-a-credential")
        rc = rogue.proc.wait(30)
        with open(rogue.log, "rb") as f:
            text = f.read()
        check(rc != 0 and b"credential refused" in text,
              "a node with a wrong credential cannot join")
        code, body, _ = http("GET", nodes[0].url + "/v1/cluster/members")
        check(b"rogue" not in body, "the refused node is not in the member table")
        # A used single-use credential cannot be used again.
        code, cred, _ = http("POST", nodes[0].url + "/v1/cluster/credentials")
        cred = cred.decode().strip()
        extra = Node(root, "n4")  # stays a learner: killing it later costs no quorum
        extra.start("--join", ticket.decode().strip(), "--join-credential", cred,
                    "--auto-promote=false")
        ok4 = wait(lambda: any(m["name"] == "n4" for m in json.loads(
            http("GET", nodes[0].url + "/v1/cluster/members")[1])["members"]), 30)
        check(bool(ok4), "a fourth node joins with a fresh credential")
        again = Node(root, "n5")
        again.start("--join", ticket.decode().strip(), "--join-credential", cred)
        rc = again.proc.wait(30)
        check(rc != 0, "a single-use credential cannot be used twice")
        extra.kill()
        # Graceful stop of the leader: exit 0 and leadership moves.
        ld = leader_of(nodes)
        t0 = time.time()
        rc = ld.term()
        check(rc == 0, f"SIGTERM: the leader ({ld.name}) exits 0 "
                       f"after a graceful shutdown ({time.time() - t0:.2f}s)")
        rest = [n for n in nodes if n is not ld]
        check(bool(wait(lambda: leader_of(rest), 5)), "another node leads after the handover")
    finally:
        stop_all(nodes)


def scenario_kill_leader(root):
    nodes, ok = form_cluster(root)
    try:
        check(ok, "cluster for the failover scenario forms")
        if not ok:
            return
        acked = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                for n in nodes:
                    if not n.alive():
                        continue
                    code, _, _ = put(n, f"w{i:06d}", f"x{i}", timeout=3)
                    if code == 200:
                        acked.append(i)
                        break
                i += 1

        th = threading.Thread(target=writer)
        th.start()
        time.sleep(1.0)
        old = leader_of(nodes)
        before = len(acked)
        old.kill()
        t0 = time.time()
        rest = [n for n in nodes if n is not old]
        new = wait(lambda: leader_of(rest), 10, step=0.02)
        elapsed = time.time() - t0
        check(new is not None and elapsed <= 2 * ELECTION_MAX_S + 0.3,
              f"new leader after SIGKILL of the leader in {elapsed:.2f}s "
              f"(bound: 2 election timeouts = {2 * ELECTION_MAX_S:.1f}s)")
        time.sleep(1.5)
        stop.set()
        th.join()
        check(len(acked) > before, f"writes continued after the failover ({len(acked)} acked)")
        missing = [i for i in acked if get(new, f"w{i:06d}") != (200, f"x{i}".encode())]
        check(not missing, f"no acknowledged write lost ({len(acked)} checked, "
                           f"{len(missing)} missing)")
        # Restart the old leader: it catches up by log.
        old.start()
        target = status(new)["commit"]
        caught = wait(lambda: (status(old) or {}).get("applied", 0) >= target, 20)
        check(bool(caught), "the restarted old leader catches up")
        last = acked[-1]
        check(get(old, f"w{last:06d}", serializable=True) == (200, f"x{last}".encode()),
              "the restarted node serves the last acknowledged write locally")
    finally:
        stop_all(nodes)


def scenario_membership(root):
    nodes, ok = form_cluster(root)
    try:
        check(ok, "cluster for the membership scenario forms")
        if not ok:
            return
        ld = leader_of(nodes)
        _, ticket, _ = http("GET", ld.url + "/v1/cluster/ticket")
        _, cred, _ = http("POST", ld.url + "/v1/cluster/credentials")
        n4 = Node(root, "n4")
        n4.start("--join", ticket.decode().strip(), "--join-credential", cred.decode().strip(),
                 "--auto-promote=false")
        # Writes keep flowing while the learner is added.
        codes = [put(nodes[i % 3], f"m{i}", "v")[0] for i in range(20)]
        check(all(c == 200 for c in codes), "writes succeed while a learner joins")

        def n4_role():
            code, body, _ = http("GET", ld.url + "/v1/cluster/members", timeout=1)
            if code != 200:
                return None
            for m in json.loads(body)["members"]:
                if m["name"] == "n4":
                    return m
            return None

        m4 = wait(lambda: (n4_role() or {}).get("role") == "learner" and n4_role(), 20)
        check(bool(m4), "the fourth node is a learner")
        n4_caught = wait(lambda: (status(n4) or {}).get("applied", 0) >= status(ld)["commit"], 20)
        check(bool(n4_caught), "the learner caught up")
        code, _, _ = http("POST", f"{ld.url}/v1/cluster/members/{m4['id']}/promote")
        check(code == 200 and n4_role()["role"] == "voter", "promote the learner to voter")
        victim = next(n for n in nodes if n is not ld)
        vid = status(victim)["id"]
        code, _, _ = http("DELETE", f"{ld.url}/v1/cluster/members/{vid}")
        check(code == 200, f"remove {victim.name}")
        names = [m["name"] for m in json.loads(http("GET", ld.url + "/v1/cluster/members")[1])["members"]]
        check(victim.name not in names, "the removed member's record is gone")
        codes = [put(ld, f"after{i}", "v")[0] for i in range(10)]
        check(all(c == 200 for c in codes), "the cluster keeps serving after the removal")
        check(get(n4, "after9")[0] == 200, "the promoted node serves reads")
        n4.kill()
    finally:
        stop_all(nodes)


def scenario_snapshot(root):
    """A follower down while the leader compacts its log, and a node joining after
    that, both catch up by snapshot transfer (the log they need is gone)."""
    extra = ("--snapshot-count", "1001")  # the minimum: snapshots every ~1000 entries
    nodes, ok = form_cluster(root, extra=extra)
    try:
        check(ok, "cluster for the snapshot scenario forms")
        if not ok:
            return
        ld = leader_of(nodes)
        lag = next(n for n in nodes if n is not ld)
        lag.kill()
        # ~40 MB of values: many times the sender's window of 1 MiB chunks, so the
        # transfer is paced by the receiver's acknowledgements, and long enough to be
        # interrupted.
        count, pad = 2600, 15000
        acked = put_many(ld, "s", count, pad=pad)
        check(len(acked) == count, f"{count} writes acknowledged with a follower down")
        st = status(ld)
        check(st["snapshot_index"] >= 2000,
              f"the leader took snapshots and compacted (snapshot index {st['snapshot_index']})")
        # Killed while the snapshot streams in: the spool is left behind, and the restarted
        # node removes it and takes a fresh transfer.
        lag.start(*extra)
        spooling = wait(lambda: spools(lag), 15, step=0.002)
        lag.kill()
        check(bool(spooling), "the follower was killed during the transfer (spool seen)")
        lag.start(*extra)
        target = st["commit"]
        caught = wait(lambda: (status(lag) or {}).get("applied", 0) >= target, 30)
        check(bool(caught), "the follower that was down catches up")
        check((metric(lag, "aspen_snapshot_installed_total") or 0) >= 1 and
              (metric(ld, "aspen_snapshot_sent_total") or 0) >= 1,
              "it caught up by a snapshot transfer (metrics on both sides)")
        check((metric(ld, "aspen_network_peer_round_trip_time_seconds_count") or 0) > 0 and
              (metric(ld, "aspen_disk_commit_duration_seconds_count") or 0) > 0,
              "the leader exports peer RTT and disk commit latency")
        sample = list(range(0, count, 97)) + [count - 1]
        bad = [i for i in sample
               if get(lag, f"s{i:05d}", serializable=True) != (200, val(i, pad).encode())]
        check(not bad, f"the installed state holds the writes ({len(sample)} sampled, "
                       f"{len(bad)} wrong)")
        more = put_many(ld, "t", 50, threads=2)
        last = more[-1] if more else 0
        got = wait(lambda: get(lag, f"t{last:05d}", serializable=True) == (200, f"v{last}".encode()), 10)
        check(bool(got), "replication continues by log after the install")
        check(not spools(lag), "the spool file is removed after the install")
        # The install is durable: a SIGKILL and restart keep it.
        lag.kill()
        lag.start(*extra)
        ok = wait(lambda: get(lag, f"s{count - 1:05d}", serializable=True) ==
                  (200, val(count - 1, pad).encode()), 15)
        check(bool(ok), "the installed state survives SIGKILL and restart")
        # A node joining after compaction gets the state by snapshot too.
        _, ticket, _ = http("GET", ld.url + "/v1/cluster/ticket")
        _, cred, _ = http("POST", ld.url + "/v1/cluster/credentials")
        n4 = Node(root, "n4")
        nodes.append(n4)
        n4.start("--join", ticket.decode().strip(), "--join-credential", cred.decode().strip(),
                 *extra)
        ok = wait(lambda: len(voters(ld)) == 4, 40)
        check(bool(ok), "a node joining after compaction is promoted to voter")
        check((metric(n4, "aspen_snapshot_installed_total") or 0) >= 1,
              "the joiner received its state by snapshot")
        check(get(n4, f"t{last:05d}") == (200, f"v{last}".encode()) and
              get(n4, "s00000") == (200, val(0, pad).encode()),
              "the joiner serves linearizable reads")
        # The leader dies while a fifth node's snapshot streams in: the new leader's
        # transfer replaces the broken one, and the receiver cleans up after it.
        _, cred, _ = http("POST", ld.url + "/v1/cluster/credentials")
        n5 = Node(root, "n5")
        nodes.append(n5)
        n5.start("--join", ticket.decode().strip(), "--join-credential", cred.decode().strip(),
                 "--auto-promote=false", *extra)
        spooling = wait(lambda: spools(n5), 20, step=0.002)
        ld.kill()
        check(bool(spooling), "the leader was killed during a transfer to a joiner")
        rest = [n for n in nodes if n.alive()]
        new = wait(lambda: leader_of(rest), 10)
        check(new is not None, "a new leader is elected")
        if new:
            target = status(new)["commit"]
            ok = wait(lambda: (status(n5) or {}).get("applied", 0) >= target, 30)
            check(bool(ok) and get(n5, f"t{last:05d}", serializable=True) ==
                  (200, f"v{last}".encode()), "the joiner gets its state from the new leader")
            check(wait(lambda: not spools(n5), 10) is not None and not spools(n5),
                  "no spool file is left behind")
    finally:
        stop_all(nodes)


def scenario_bad_peer_input(root):
    n = Node(root, "solo")
    n.start("--init")
    try:
        ok = wait(lambda: http("GET", n.url + "/health", timeout=1)[0] == 200, 15)
        check(bool(ok), "single node starts")
        payloads = [b"GET / HTTP/1.1\r\n\r\n", os.urandom(4096),
                    b"\x16\x03\x01\x00\x05\x01\x00", b"\x16\x03\x01\xff\xff" + b"\x00" * 100,
                    b"\x00" * 70000]
        for p in payloads:
            try:
                s = socket.create_connection(("127.0.0.1", n.peer), timeout=2)
                s.sendall(p)
                s.settimeout(2)
                try:
                    while s.recv(4096):
                        pass
                except (socket.timeout, ConnectionError):
                    pass
                s.close()
            except OSError:
                pass
        half = socket.create_connection(("127.0.0.1", n.peer), timeout=2)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc")  # truncated ClientHello
        time.sleep(0.2)
        code, _, _ = put(n, "still", "alive")
        check(n.alive() and code == 200, "garbage, truncated and oversized input on the peer "
                                         "port leave the node serving")
        half.close()
        with open(n.log, "rb") as f:
            log = f.read()
        check(b"peer" in log and (b"refused" in log or b"dropped" in log),
              "the refusals are logged with a reason")
        # The client port too: malformed HTTP gets an error, the node stays up.
        s = socket.create_connection(("127.0.0.1", n.client), timeout=2)
        s.sendall(b"BLAH\r\n\r\n")
        resp = s.recv(100)
        s.close()
        check(resp.startswith(b"HTTP/1.1 400"), "malformed HTTP on the client port gets 400")
        check(get(n, "still") == (200, b"alive"), "the node still serves after bad input")
        rc = n.term()
        check(rc == 0, "single node exits 0 on SIGTERM")
        # Restart: the data is still there, and --init is ignored on an initialised dir.
        n.start("--init")
        ok = wait(lambda: http("GET", n.url + "/health", timeout=1)[0] == 200, 15)
        check(bool(ok) and get(n, "still") == (200, b"alive"), "restart keeps the data")
    finally:
        n.kill()


def main():
    global NODE
    NODE = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv
    root = tempfile.mkdtemp(prefix="aspen-cluster-")
    scenarios = [scenario_formation, scenario_kill_leader, scenario_membership,
                 scenario_snapshot, scenario_bad_peer_input]
    only = os.environ.get("ASPEN_TEST_SCENARIO")
    try:
        for s in scenarios:
            if only and only not in s.__name__:
                continue
            sub = os.path.join(root, s.__name__)
            os.makedirs(sub)
            print(f"== {s.__name__}", flush=True)
            t0 = time.time()
            try:
                s(sub)
            except Exception as e:  # a crash in the test is a failure, not a hang
                check(False, f"{s.__name__} raised {type(e).__name__}: {e}")
            print(f"   ({time.time() - t0:.1f}s)", flush=True)
    finally:
        if failed or keep:
            print(f"logs kept in {root}")
            for dirpath, _, files in os.walk(root):
                for f in files:
                    if f.endswith(".log") and failed:
                        print(f"--- {os.path.join(dirpath, f)} (last 30 lines)")
                        with open(os.path.join(dirpath, f), errors="replace") as fh:
                            print("".join(fh.readlines()[-30:]))
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"cluster: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
