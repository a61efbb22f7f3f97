#!/usr/bin/env python3
"""Cluster scenarios under real network faults: one network namespace per aspen-node.

cluster_test.py runs its nodes on loopback, where packets are never late or lost. Raft's
interesting behaviour is what happens when they are, so this suite gives each node its own
network namespace and its own addresses, and puts the faults on the wire between them:

  formation + writes through every node + linearizable reads everywhere under
  delay 30ms 10ms loss 1%; SIGKILL of the leader under a write load (a new leader within
  a bound derived from the raft profile and the added delay, no acknowledged write lost,
  the old node catches up after restart); isolating the leader (the majority elects
  another and keeps writing, the old leader acknowledges nothing and serves no stale read,
  then converges after the heal); 20 % loss on the leader's sends only (asymmetric): no
  acknowledged write lost.

Topology. A hub namespace holds two networks: 10.213.1.0/24 for Raft peer traffic (the
faults go there) and 10.213.2.0/24 for the HTTP client traffic of this test (kept clean,
so that a failed request means the cluster refused it, not that the test's own packet was
dropped). Node i is 10.213.1.i (peer, port 2380) and 10.213.2.i (client, port 2379) in
namespace aspen-t<pid>-n<i>; the test itself is .254 on both and switches its own thread
into the hub namespace, so nothing is added to the host's namespace, interfaces or routes.

Two ways to put faults on the wire, chosen at start (ASPEN_NETEM_BACKEND=auto|tc|wire):
  tc:   veth pairs into two bridges in the hub; `tc qdisc ... netem` on the node's peer
        veth (its egress: delay, jitter, loss) and `netem loss 100%` on both ends of it for
        a partition. This is the preferred backend.
  wire: when the kernel has no sch_netem (built without it and without modules, as on
        the shared build machine this suite was written on), each namespace gets a TUN device instead and this process forwards
        every IPv4 packet between them, applying the same delay (uniform in delay +- jitter,
        as netem without a distribution table), loss and partitions to peer packets. The
        nodes' kernels still run real TCP over real loss and delay; only the emulator moves
        from the qdisc to user space. `auto` takes tc when a netem qdisc can be added,
        else wire.
It skips (exit 77, meson's skip code, one line "netem: SKIPPED (reason: ...)") when not
root, when network namespaces cannot be made, or when neither backend is possible
(ASPEN_NETEM_BACKEND=tc on a kernel without netem, or no /dev/net/tun).

Every namespace (and with it every veth, bridge and TUN device in it) and every process
is removed at the end, on failure, on SIGINT/SIGTERM and at exit; namespaces of an earlier
run that crashed (prefix aspen-t<pid>- with that pid gone) are removed at start, together
with the processes still running inside them.

Each scenario forms a fresh cluster in the same namespaces, so no TCP or reconnect state
carries over from one to the next. Usage: netem_test.py ASPEN_NODE [--keep].
ASPEN_TEST_SCENARIO=<part of a name> runs one scenario. Ends with
"netem: N passed, N failed".
"""
import atexit
import ctypes
import fcntl
import heapq
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_test as ct  # noqa: E402  (the helpers: Node, http, put, get, wait, check)

SKIP = 77
PREFIX = f"aspen-t{os.getpid()}-"
HUB = PREFIX + "hub"
COUNT = 3
PEER_NET, CLIENT_NET = 1, 2  # third octet of 10.213.x.0/24
HUB_HOST = 254
CLIENT_PORT, PEER_PORT = 2379, 2380

# ---- timing bounds ----------------------------------------------------------------------
# The balanced profile (the default, as in cluster_test): heartbeat 100 ms, elections
# drawn from 0.5-1.0 s.
ELECTION_MAX_S = ct.ELECTION_MAX_S
# The standard faults of every scenario, as netem spells them: "delay 30ms 10ms loss 1%"
# on every node's sends, so one way between two nodes takes 20-40 ms.
DELAY_MS, JITTER_MS, LOSS_PCT = 30, 10, 1.0
ONE_WAY_MAX_S = (DELAY_MS + JITTER_MS) / 1000
RTT_MAX_S = 2 * ONE_WAY_MAX_S
# Linux never retransmits a lost TCP segment sooner than 200 ms (TCP_RTO_MIN); with a
# 40-80 ms RTT the first retransmission comes after about 0.26 s (`ss -ti` shows rto:252-276
# on these links), 0.3 s allowing for a busy machine. A lost SYN waits 1 s (TCP's initial
# RTO) instead.
TCP_FIRST_RTO_S = 0.3
TCP_SYN_RTO_S = 1.0
# What a shared 2-core machine adds (other builds run alongside; with the wire backend this
# process forwards every packet in Python): the slowest step seen over repeated runs under
# load stayed well inside it.
SLACK_S = 1.0
# A new leader after the old one is gone: followers notice within one election timeout
# (<= ELECTION_MAX_S after the last heartbeat); a follower dials the other only when it
# campaigns (TCP + TLS 1.3 handshakes and the transport's acceptance frame: 3 RTT), then
# a pre-vote and a vote round (2 RTT); one lost packet on the way costs at most a SYN
# retransmission. Split votes are not rare here: a tick is half the heartbeat (50 ms), so
# the randomized timeout takes one of only ten values, both followers reset it on the same
# last heartbeat, and two that fire within one RTT of each other both become candidates
# (seen twice in a row in one election). Each split costs one more election timeout and
# vote round; the bound allows three.
SPLIT_VOTES = 3
LEADER_BOUND_S = ((1 + SPLIT_VOTES) * (ELECTION_MAX_S + 2 * RTT_MAX_S) + 3 * RTT_MAX_S
                  + max(TCP_SYN_RTO_S, TCP_FIRST_RTO_S) + SLACK_S)
# Catching up after a restart: the leader redials the restarted node when its reconnect
# backoff (net/backoff.h: full jitter, capped exponential from 50 ms) runs out, at the
# latest after ASPEN_PEER_BACKOFF_MAX_MS (16 s) however long the node was down; then the
# log (a few hundred entries) and a heartbeat round. The other follower's own backoff to
# the restarted node is not covered by this bound: see scenario_kill_leader.
PEER_BACKOFF_MAX_S = 16.0
CATCH_UP_BOUND_S = PEER_BACKOFF_MAX_S + 2 * ELECTION_MAX_S + SLACK_S
# How long the leader stays isolated, at least (the checks inside take what they take).
PARTITION_S = 4.0


def heal_bound_s(partition_s):
    """After a heal, the TCP connections between the old leader and the others resume at
    their next retransmission: the peer transport keeps an established connection however
    long it is silent (no idle timeout, no keepalive), and the kernel doubles its
    retransmission timeout on every loss. A segment first lost at t0 >= the start of the
    partition is retried at t0 + RTO0 * (2^k - 1), so the first retry after a heal at P
    comes within P + RTO0 of it; if that retry is lost too (1 % loss stays on), the next
    one comes 2 (P + RTO0) later. Both directions wait at once. Then an append and its
    answer (RTT) and the machine's slack."""
    return 3 * (partition_s + TCP_FIRST_RTO_S) + 2 * RTT_MAX_S + SLACK_S


def utc_now():
    t = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def log(msg):
    print(msg, flush=True)


def sh(*cmd, check=True):
    """Runs one command; returns (rc, combined output). Raises on failure when check."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stdout.strip()}")
    return p.returncode, p.stdout


def ns_name(i):
    return f"{PREFIX}n{i}"


def addr(net, host):
    return f"10.213.{net}.{host}"


# ---- namespaces -------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns_fd(fd):
    """Moves the calling thread into the network namespace open at fd (setns(2); Python
    3.11 has no os.setns). Threads started afterwards inherit it."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def open_ns(name):
    return os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_ns(name):
    """Kills what still runs in namespace name (by pid), then deletes it; the veths,
    bridges and TUN devices inside go with it."""
    _, out = sh("ip", "netns", "pids", name, check=False)
    for tok in out.split():
        if tok.isdigit() and int(tok) != os.getpid():
            try:
                os.kill(int(tok), signal.SIGKILL)
            except ProcessLookupError:
                pass
    sh("ip", "netns", "del", name, check=False)


def remove_stale():
    """Namespaces of earlier runs whose process is gone (a crash or a SIGKILL left them)."""
    _, out = sh("ip", "netns", "list", check=False)
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^aspen-t(\d+)-", name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            log(f"removing stale namespace {name}")
            remove_ns(name)


class Topology:
    """The namespaces and the wire between them. Faults on node i's peer traffic:
    set_egress (what it sends: delay, jitter, loss), isolate / heal (everything to and
    from it on the peer network)."""

    kind = "?"

    def __init__(self):
        self.namespaces = []
        self.egress = {}  # node -> (delay_ms, jitter_ms, loss_pct), for heal()

    def make_ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def teardown(self):
        for name in reversed(self.namespaces):
            remove_ns(name)
        self.namespaces = []


class NetemTopology(Topology):
    """veth pairs into two bridges in the hub; faults are netem qdiscs."""

    kind = "tc"

    def build(self):
        for br, net in (("brp", PEER_NET), ("brc", CLIENT_NET)):
            sh("ip", "-n", HUB, "link", "add", br, "type", "bridge")
            sh("ip", "-n", HUB, "addr", "add", addr(net, HUB_HOST) + "/24", "dev", br)
            sh("ip", "-n", HUB, "link", "set", br, "up")
        for i in range(1, COUNT + 1):
            ns = ns_name(i)
            self.make_ns(ns)
            for hub_end, node_end, br, net in ((f"p-n{i}", "peer0", "brp", PEER_NET),
                                               (f"c-n{i}", "cli0", "brc", CLIENT_NET)):
                sh("ip", "-n", HUB, "link", "add", hub_end, "type", "veth", "peer", "name",
                   node_end, "netns", ns)
                sh("ip", "-n", HUB, "link", "set", hub_end, "master", br, "up")
                sh("ip", "-n", ns, "addr", "add", addr(net, i) + "/24", "dev", node_end)
                sh("ip", "-n", ns, "link", "set", node_end, "up")

    def _netem(self, ns, dev, *spec):
        if spec:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "netem",
               *spec)
        else:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)

    @staticmethod
    def _spec(delay_ms, jitter_ms, loss_pct):
        spec = []
        if delay_ms:
            spec += ["delay", f"{delay_ms}ms"] + ([f"{jitter_ms}ms"] if jitter_ms else [])
        if loss_pct:
            spec += ["loss", f"{loss_pct:g}%"]
        return spec

    def set_egress(self, i, delay_ms=0, jitter_ms=0, loss_pct=0.0):
        self.egress[i] = (delay_ms, jitter_ms, loss_pct)
        self._netem(ns_name(i), "peer0", *self._spec(delay_ms, jitter_ms, loss_pct))

    def isolate(self, i):
        # Both ends: what the node sends and what the bridge sends to it.
        self._netem(ns_name(i), "peer0", "loss", "100%")
        self._netem(HUB, f"p-n{i}", "loss", "100%")

    def heal(self, i):
        self._netem(HUB, f"p-n{i}")
        self._netem(ns_name(i), "peer0", *self._spec(*self.egress.get(i, (0, 0, 0))))


class Wire(threading.Thread):
    """User-space netem: forwards IPv4 packets between the namespaces' TUN devices.

    Packets on the peer network are dropped when either end is isolated, else dropped
    with the sender's loss probability, else delivered after the sender's delay drawn
    uniformly from delay +- jitter (so packets may be reordered, as with netem's jitter).
    Client-network packets are forwarded at once."""

    def __init__(self, fds, seed):
        super().__init__(name="wire", daemon=True)
        self.fds = fds  # host octet -> TUN fd
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.egress = {}
        self.isolated = set()
        self.stopping = False
        self.stats = {"forwarded": 0, "lost": 0, "partitioned": 0, "other": 0}
        self.seq = 0  # heap tie-break: packets due at the same instant keep their order

    def route(self, pkt, heap, now):
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[16] != 10 or pkt[17] != 213:
            self.stats["other"] += 1  # IPv6 router solicitations and the like
            return
        net, dst, src = pkt[18], pkt[19], pkt[15]
        fd = self.fds.get(dst)
        if fd is None:
            self.stats["other"] += 1
            return
        due = now
        if net == PEER_NET:
            with self.lock:
                if src in self.isolated or dst in self.isolated:
                    self.stats["partitioned"] += 1
                    return
                delay_ms, jitter_ms, loss_pct = self.egress.get(src, (0, 0, 0.0))
            if loss_pct and self.rng.random() * 100 < loss_pct:
                self.stats["lost"] += 1
                return
            if delay_ms:
                due = now + max(0.0, self.rng.uniform(delay_ms - jitter_ms,
                                                      delay_ms + jitter_ms)) / 1000
        self.stats["forwarded"] += 1
        self.seq += 1
        heapq.heappush(heap, (due, self.seq, fd, pkt))

    def run(self):
        poller = select.poll()
        for fd in self.fds.values():
            poller.register(fd, select.POLLIN)
        heap = []
        while not self.stopping:
            now = time.monotonic()
            wait_ms = 50 if not heap else max(0, int((heap[0][0] - now) * 1000 + 0.999))
            for fd, _ in poller.poll(min(wait_ms, 50)):
                for _ in range(256):  # bounded: one busy device cannot starve the others
                    try:
                        pkt = os.read(fd, 65536)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    self.route(pkt, heap, time.monotonic())
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, _, fd, pkt = heapq.heappop(heap)
                try:
                    os.write(fd, pkt)
                except OSError:
                    pass  # the device is gone (teardown) or its queue is full: a loss


class WireTopology(Topology):
    """One TUN device per namespace, each with both networks' addresses, joined by Wire."""

    kind = "wire"
    TUNSETIFF = 0x400454CA
    IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

    def __init__(self, hub_fd):
        super().__init__()
        self.hub_fd = hub_fd
        self.fds = {}
        self.wire = None

    def _tun_in(self, ns):
        """Creates TUN device wire0 inside ns (the device lives in the namespace of the
        thread that creates it) and returns its fd, which stays in this process."""
        nsfd = open_ns(ns)
        try:
            setns_fd(nsfd)
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            fcntl.ioctl(fd, self.TUNSETIFF,
                        struct.pack("16sH22x", b"wire0", self.IFF_TUN | self.IFF_NO_PI))
        finally:
            setns_fd(self.hub_fd)
            os.close(nsfd)
        return fd

    def _attach(self, ns, host):
        self.fds[host] = self._tun_in(ns)
        for net in (PEER_NET, CLIENT_NET):
            sh("ip", "-n", ns, "addr", "add", addr(net, host) + "/24", "dev", "wire0")
        sh("ip", "-n", ns, "link", "set", "wire0", "up")

    def build(self):
        self._attach(HUB, HUB_HOST)
        for i in range(1, COUNT + 1):
            self.make_ns(ns_name(i))
            self._attach(ns_name(i), i)
        given = os.environ.get("ASPEN_TEST_SEED", "")  # the harness's variable; "random" too
        seed = int(given) if given.isdigit() else random.randrange(1, 2**32)
        log(f"   wire seed {seed} (ASPEN_TEST_SEED replays the loss draws; timing still varies)")
        self.wire = Wire(self.fds, seed)
        self.wire.start()

    def set_egress(self, i, delay_ms=0, jitter_ms=0, loss_pct=0.0):
        with self.wire.lock:
            self.egress[i] = self.wire.egress[i] = (delay_ms, jitter_ms, loss_pct)

    def isolate(self, i):
        with self.wire.lock:
            self.wire.isolated.add(i)

    def heal(self, i):
        with self.wire.lock:
            self.wire.isolated.discard(i)

    def teardown(self):
        if self.wire:
            self.wire.stopping = True
            self.wire.join(2)
            log(f"   wire: {self.wire.stats}")
            self.wire = None
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}
        super().teardown()


def netem_works():
    """Whether a netem qdisc can be added (after modprobe sch_netem, where modules exist):
    tried on a throwaway veth pair in the hub. (True, "") or (False, reason)."""
    rc, out = sh("ip", "-n", HUB, "link", "add", "probe0", "type", "veth", "peer", "name",
                 "probe1", check=False)
    if rc != 0:
        return False, f"cannot make a veth pair: {out.strip()}"
    try:
        cmd = ("ip", "netns", "exec", HUB, "tc", "qdisc", "add", "dev", "probe0", "root",
               "netem", "delay", "1ms")
        rc, out = sh(*cmd, check=False)
        if rc != 0 and shutil.which("modprobe"):
            sh("modprobe", "sch_netem", check=False)
            rc, out = sh(*cmd, check=False)
        return rc == 0, out.strip()
    finally:
        sh("ip", "-n", HUB, "link", "del", "probe0", check=False)


# ---- the cluster in the namespaces ------------------------------------------------------

def make_node(root, name):
    i = int(name[1:])
    return ct.Node(root, name, host=addr(CLIENT_NET, i), client=CLIENT_PORT,
                   peer_host=addr(PEER_NET, i), peer=PEER_PORT,
                   launcher=["ip", "netns", "exec", ns_name(i)])


def index_of(node):
    return int(node.name[1:])


def read_prefix(n, prefix, serializable=False, timeout=10):
    """{key: value} of a prefix listing (linearizable unless serializable), or None."""
    q = "?prefix" + ("&serializable" if serializable else "")
    code, body, _ = ct.http("GET", f"{n.url}/v1/kv/{prefix}{q}", timeout=timeout)
    if code != 200:
        return None
    j = json.loads(body)
    if j.get("more"):
        return None
    return {kv["key"]: kv["value"] for kv in j["kvs"]}


class Writer(threading.Thread):
    """One client of a steady write load: key <prefix><i> = v<i>, one at a time, through each
    live node in turn (followers redirect to the leader); records which writes were
    acknowledged (HTTP 200: committed, applied and synced on the leader)."""

    def __init__(self, nodes, prefix, timeout=3):
        super().__init__(name="writer-" + prefix, daemon=True)
        self.nodes, self.prefix, self.timeout = nodes, prefix, timeout
        self.acked = []  # (i, monotonic time of the acknowledgement)
        self.stop = threading.Event()

    def key(self, i):
        return f"{self.prefix}{i:06d}"

    def run(self):
        i = 0
        while not self.stop.is_set():
            live = [n for n in self.nodes if n.alive()]
            for k in range(len(live)):
                n = live[(i + k) % len(live)]
                code, _, _ = ct.put(n, self.key(i), f"v{i}", timeout=self.timeout)
                if code == 200:
                    self.acked.append((i, time.monotonic()))
                    break
            else:
                time.sleep(0.05)  # no leader yet: do not spin
            i += 1

    def finish(self):
        self.stop.set()
        self.join(30)

    def missing(self, n, serializable=False):
        """Acknowledged writes that a prefix read on n does not show (None: no read)."""
        got = read_prefix(n, self.prefix, serializable)
        if got is None:
            return None
        return [i for i, _ in self.acked if got.get(self.key(i)) != f"v{i}"]


class Load:
    """WRITERS clients writing at once (more writes in flight when the leader dies), each
    under its own prefix so their keys never collide."""

    WRITERS = 3

    def __init__(self, nodes, prefix, timeout=3):
        self.writers = [Writer(nodes, f"{prefix}{k}-", timeout) for k in range(self.WRITERS)]
        for w in self.writers:
            w.start()

    def acked(self, since=None):
        return sum(1 for w in self.writers for _, t in w.acked if since is None or t > since)

    def finish(self):
        for w in self.writers:
            w.stop.set()
        for w in self.writers:
            w.join(30)

    def missing(self, n, serializable=False):
        """How many acknowledged writes a prefix read on n lacks (None: a read failed)."""
        total = 0
        for w in self.writers:
            m = w.missing(n, serializable)
            if m is None:
                return None
            total += len(m)
        return total


def settled(nodes, secs=20):
    """Waits until one leader is known and every node has applied its commit index."""
    def ok():
        ld = ct.leader_of(nodes)
        if not ld:
            return None
        st = ct.status(ld)
        if not st:
            return None
        return all((ct.status(n) or {}).get("applied", -1) >= st["commit"] for n in nodes) and ld
    return ct.wait(ok, secs, step=0.1)


# ---- scenarios --------------------------------------------------------------------------

def fresh_cluster(root, topo, state, name):
    """A new 3-node cluster in the namespaces, formed under the standard faults, for one
    scenario: the previous scenario's nodes are killed first, so no TCP connection (with
    the retransmission backoff a partition leaves on it) and no reconnect backoff carries
    over from one scenario to the next. (nodes, formation seconds) or (nodes, None)."""
    for n in state.get("nodes", []):
        n.kill()
    for i in range(1, COUNT + 1):
        topo.heal(i)
        topo.set_egress(i, DELAY_MS, JITTER_MS, LOSS_PCT)
    sub = os.path.join(root, name)
    os.makedirs(sub)
    t0 = time.monotonic()
    nodes, ok = ct.form_cluster(sub, COUNT, make=make_node)
    state["nodes"] = nodes
    return nodes, (time.monotonic() - t0 if ok else None)


def scenario_formation(root, topo, state):
    nodes, secs = fresh_cluster(root, topo, state, "formation")
    ct.check(secs is not None, f"3-node cluster forms in namespaces under delay {DELAY_MS}ms "
                               f"{JITTER_MS}ms loss {LOSS_PCT:g}% ({secs or 0:.1f}s)")
    if secs is None:
        return False
    for i, n in enumerate(nodes):
        code, _, _ = ct.put(n, f"f{i}", f"v{i}")
        ct.check(code == 200, f"write through {n.name}")
    for n in nodes:
        vals = [ct.get(n, f"f{i}") for i in range(COUNT)]
        ct.check(all(v == (200, f"v{i}".encode()) for i, v in enumerate(vals)),
                 f"linearizable reads on {n.name} see every write")
    # The faults are really on the wire: a commit needs the leader's append and a
    # follower's answer, each delayed by at least DELAY_MS - JITTER_MS on its sender.
    ld = ct.leader_of(nodes)
    lat = []
    for k in range(7):
        t = time.monotonic()
        code, _, _ = ct.put(ld, f"lat{k}", "x")
        if code == 200:
            lat.append(time.monotonic() - t)
    lat.sort()
    floor = 2 * (DELAY_MS - JITTER_MS) / 1000
    med = lat[len(lat) // 2] if lat else 0
    ct.check(len(lat) == 7 and med >= floor,
             f"a commit waits for the delayed round trip (median {med * 1000:.0f} ms, "
             f">= {floor * 1000:.0f} ms)")
    return True


def scenario_kill_leader(root, topo, state):
    """SIGKILL of the leader under a write load, then its restart.

    Seen while writing this suite (node behaviour, not fixed here): the survivors' dials to
    the dead node fail (connection refused) and their reconnect backoff grows; once it is
    back, the node dials them and is heard, but the follower that is not the leader keeps
    its messages to it queued until its own backoff timer fires, because the transport
    never sends on a connection the peer dialed and an inbound connection does not cut the
    backoff short. An election that needs the two of them in that window waits for it
    (seen: 3.5 s instead of < 1 s). Nothing here needs them after the restart, and the next
    scenario starts a fresh cluster."""
    nodes, secs = fresh_cluster(root, topo, state, "kill_leader")
    if not ct.check(secs is not None, "a fresh cluster forms"):
        return
    load = Load(nodes, "w")
    time.sleep(1.0)
    old = ct.leader_of(nodes)
    before = load.acked()
    ct.check(old is not None and before > 0, f"writes flow before the kill ({before} acked)")
    if old is None:
        load.finish()
        return
    old.kill()
    t0 = time.monotonic()
    log(f"   killed {old.name} at {utc_now()}")
    rest = [n for n in nodes if n is not old]
    new = ct.wait(lambda: ct.leader_of(rest), 15, step=0.02)
    elapsed = time.monotonic() - t0
    ct.check(new is not None and elapsed <= LEADER_BOUND_S,
             f"new leader after SIGKILL of {old.name} in {elapsed:.2f}s "
             f"(bound {LEADER_BOUND_S:.2f}s: up to {SPLIT_VOTES} split votes, dial and vote "
             f"round trips, one retransmission, slack)")
    time.sleep(1.5)
    load.finish()
    after = load.acked(since=t0 + elapsed)
    ct.check(after > 0, f"writes continue after the failover ({after} acked since)")
    if new is None:
        return
    missing = load.missing(new)
    ct.check(missing == 0, f"no acknowledged write lost: {load.acked()} read back "
                           f"linearizably on {new.name} "
                           f"({'no read' if missing is None else missing} missing)")
    target = ct.status(new)["commit"]
    t1 = time.monotonic()
    old.start()
    log(f"   restarted {old.name} at {utc_now()}")
    caught = ct.wait(lambda: (ct.status(old) or {}).get("applied", 0) >= target,
                     CATCH_UP_BOUND_S + 5)
    el = time.monotonic() - t1
    ct.check(bool(caught) and el <= CATCH_UP_BOUND_S,
             f"the restarted {old.name} catches up in {el:.2f}s (bound {CATCH_UP_BOUND_S:.1f}s)")
    missing = load.missing(old, serializable=True)
    ct.check(missing == 0, f"the restarted {old.name} holds every acknowledged write locally")


def scenario_partition(root, topo, state):
    nodes, secs = fresh_cluster(root, topo, state, "partition")
    if not ct.check(secs is not None, "a fresh cluster forms"):
        return
    old = settled(nodes)
    ct.check(bool(old), "the cluster has settled before the partition")
    if not old:
        return
    code, _, _ = ct.put(old, "p-before", "1")
    ct.check(code == 200, f"a write before isolating the leader {old.name}")
    rest = [n for n in nodes if n is not old]
    topo.isolate(index_of(old))
    t0 = time.monotonic()
    log(f"   isolated {old.name} at {utc_now()}")

    # A write sent to the isolated leader itself, not following redirects. It may sit in
    # the old leader's log, but a majority never sees it: it must not be acknowledged.
    # Its timeout is past the node's own (10 s), so the node's answer is seen.
    result = {}

    def write_to_old():
        result["put"] = ct.http("PUT", f"{old.url}/v1/kv/p-lost", b"lost", timeout=12,
                                follow=False)
    th = threading.Thread(target=write_to_old, daemon=True)
    th.start()

    new = ct.wait(lambda: ct.leader_of(rest), 15, step=0.02)
    elapsed = time.monotonic() - t0
    ct.check(new is not None and elapsed <= LEADER_BOUND_S,
             f"the majority elects a new leader in {elapsed:.2f}s (bound {LEADER_BOUND_S:.2f}s)")
    if new is None:
        topo.heal(index_of(old))
        th.join(15)
        code = result.get("put", (None,))[0]
        ct.check(code is not None and code != 200,
                 f"the write sent to the isolated leader was not acknowledged (HTTP {code})")
        return
    # Until the other follower hears from the new leader it answers writes 503 (no leader
    # known): wait for it, within one more heartbeat round trip and a retransmission.
    new_id = (ct.status(new) or {}).get("id")
    knows = ct.wait(lambda: all((ct.status(n) or {}).get("leader") == new_id for n in rest),
                    RTT_MAX_S + TCP_FIRST_RTO_S + SLACK_S)
    ct.check(bool(knows), "both nodes of the majority know the new leader")
    codes = [ct.put(rest[k % 2], f"p{k:03d}", f"v{k}")[0] for k in range(10)]
    ct.check(all(c == 200 for c in codes), f"the majority keeps accepting writes ({codes})")
    # CheckQuorum: the old leader gives up leadership once it has not heard a majority for
    # an election timeout.
    down = ct.wait(lambda: (ct.status(old) or {}).get("role") not in (None, "leader"),
                   LEADER_BOUND_S)
    ct.check(bool(down), f"the isolated {old.name} steps down "
                         f"(role {(ct.status(old) or {}).get('role')})")
    # A linearizable read there may fail or wait, but never answer from the old state.
    code, body = ct.get(old, "p009")
    ct.check(code not in (200, 404) or (code == 200 and body == b"v9"),
             f"no stale linearizable read on the isolated node (HTTP {code})")
    time.sleep(max(0.0, PARTITION_S - (time.monotonic() - t0)))
    part_s = time.monotonic() - t0
    topo.heal(index_of(old))
    t1 = time.monotonic()
    log(f"   healed at {utc_now()}")
    conv = ct.wait(lambda: ct.get(old, "p009", serializable=True) == (200, b"v9"),
                   heal_bound_s(part_s) + 10, step=0.05)
    el = time.monotonic() - t1
    ct.check(bool(conv) and el <= heal_bound_s(part_s),
             f"after the heal {old.name} serves the newest value locally in {el:.2f}s "
             f"(bound {heal_bound_s(part_s):.2f}s after a {part_s:.1f}s partition)")
    th.join(15)
    code = result.get("put", (None,))[0]
    ct.check(code is not None and code != 200,
             f"the write sent to the isolated leader was not acknowledged (HTTP {code})")
    ld = ct.leader_of(nodes)
    code, _ = ct.get(ld or new, "p-lost")
    local, _ = ct.get(old, "p-lost", serializable=True)
    ct.check(code == 404 and local == 404,
             f"and it was never applied (linearizable read: HTTP {code}; "
             f"on {old.name} itself: HTTP {local})")


def scenario_asymmetric_loss(root, topo, state):
    nodes, secs = fresh_cluster(root, topo, state, "asymmetric_loss")
    if not ct.check(secs is not None, "a fresh cluster forms"):
        return
    ld = settled(nodes)
    ct.check(bool(ld), "the cluster has settled before the loss")
    if not ld:
        return
    # Only the leader's sends lose 20 %: it hears its followers, they often miss it.
    topo.set_egress(index_of(ld), DELAY_MS, JITTER_MS, 20.0)
    load = Load(nodes, "a", timeout=4)
    time.sleep(6.0)
    load.finish()
    for i in range(1, COUNT + 1):
        topo.set_egress(i, DELAY_MS, JITTER_MS, LOSS_PCT)
    ct.check(load.acked() > 0, f"writes commit with 20% loss on the leader's sends "
                               f"({load.acked()} acked in 6s)")
    ok = settled(nodes)
    ct.check(bool(ok), "the cluster settles once the loss is back to 1%")
    for n in nodes:
        missing = load.missing(n)
        ct.check(missing == 0, f"no acknowledged write lost: linearizable read on {n.name} "
                               f"({'no read' if missing is None else missing} missing)")


SCENARIOS = [scenario_formation, scenario_kill_leader, scenario_partition,
             scenario_asymmetric_loss]


# ---- main -------------------------------------------------------------------------------

def skip(reason):
    print(f"netem: SKIPPED (reason: {reason})", flush=True)
    return SKIP


class Run:
    """Everything this run created, removed once by cleanup() whichever way it ends."""

    def __init__(self):
        self.topo = None
        self.state = {}
        self.orig_fd = None
        self.hub_fd = None
        self.hub_made = False
        self.done = False

    def cleanup(self):
        if self.done:
            return
        self.done = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for n in self.state.get("nodes", []):
            n.kill()
        if self.topo:
            self.topo.teardown()
        if self.orig_fd is not None:
            setns_fd(self.orig_fd)  # leave the hub before deleting it
            os.close(self.orig_fd)
            self.orig_fd = None
        if self.hub_fd is not None:
            os.close(self.hub_fd)
            self.hub_fd = None
        if self.hub_made:
            remove_ns(HUB)


def main():
    ct.NODE = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv
    backend = os.environ.get("ASPEN_NETEM_BACKEND", "auto")
    if backend not in ("auto", "tc", "wire"):
        print(f"netem: ASPEN_NETEM_BACKEND must be auto, tc or wire, not '{backend}'")
        return 2
    if os.geteuid() != 0:
        return skip("needs root for network namespaces")
    if not shutil.which("ip"):
        return skip("no 'ip' command (iproute2)")

    run = Run()
    atexit.register(run.cleanup)

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    root = None
    try:
        remove_stale()
        rc, out = sh("ip", "netns", "add", HUB, check=False)
        if rc != 0:
            return skip(f"ip netns add failed: {out.strip()}")
        run.hub_made = True
        sh("ip", "-n", HUB, "link", "set", "lo", "up")
        has_netem, why = (False, "ASPEN_NETEM_BACKEND=wire") if backend == "wire" \
            else netem_works()
        if not has_netem and backend == "tc":
            return skip(f"sch_netem unavailable: {why or 'tc qdisc add ... netem failed'}")
        if not has_netem and not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            return skip(f"sch_netem unavailable ({why}) and no /dev/net/tun for the wire")
        # From here on this thread (and every thread it starts) lives in the hub.
        run.orig_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        run.hub_fd = open_ns(HUB)
        setns_fd(run.hub_fd)
        if has_netem:
            run.topo = NetemTopology()
            log("netem: backend tc (netem qdiscs on veth pairs)")
        else:
            run.topo = WireTopology(run.hub_fd)
            log(f"netem: backend wire (sch_netem unavailable: {why}; faults applied by a "
                f"user-space forwarder between TUN devices)")
        t_build = time.monotonic()
        run.topo.build()
        log(f"   namespaces {HUB}, {ns_name(1)}..{ns_name(COUNT)} ready "
            f"({time.monotonic() - t_build:.1f}s)")
        root = tempfile.mkdtemp(prefix="aspen-netem-")
        only = os.environ.get("ASPEN_TEST_SCENARIO")
        for s in SCENARIOS:
            if only and only not in s.__name__:
                continue
            log(f"== {s.__name__}")
            t0 = time.monotonic()
            try:
                r = s(root, run.topo, run.state)
            except Exception as e:  # a crash in the test is a failure, not a hang
                ct.check(False, f"{s.__name__} raised {type(e).__name__}: {e}")
                r = False
            log(f"   ({time.monotonic() - t0:.1f}s)")
            if s is scenario_formation and r is False:
                break  # if no cluster forms here, none will in the others
    finally:
        for n in run.state.get("nodes", []):
            n.kill()
        if root and (ct.failed or keep):
            log(f"logs kept in {root}")
            if ct.failed:
                for n in run.state.get("nodes", []):
                    log(f"--- {n.log} (last 40 lines)")
                    with open(n.log, errors="replace") as fh:
                        log("".join(fh.readlines()[-40:]))
        elif root:
            shutil.rmtree(root, ignore_errors=True)
        run.cleanup()
    log(f"netem: {ct.passed} passed, {ct.failed} failed")
    return 1 if ct.failed else 0


if __name__ == "__main__":
    sys.exit(main())
