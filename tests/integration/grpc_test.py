#!/usr/bin/env python3
"""gRPC server integration tests: src/rpc against a real gRPC client.

Starts grpc_echo_server (tests/integration/grpc_echo_server.c) on 127.0.0.1 with
ephemeral ports and drives it with python3-grpcio using raw-bytes calls (no generated
code), with curl for exact HTTP/2 responses (status, headers, trailers) and with raw
sockets for bytes no client library would send. Covered: every call kind, metadata,
many concurrent calls on one connection (and the stream limit), deadlines (the client's
and the server's own), cancellation by the client, unknown methods, messages at and over
the size limit, compressed and cut-short messages, status messages that need
percent-encoding, 405 / 415, garbage on the socket (the server survives and serves the
others), a server-streaming call to a client that reads slowly (the server's queue and
RSS stay bounded), keepalive pings and dead peers, the handshake deadline, the HTTP/1.1
server's handover of HTTP/2 connections, graceful close. After each scenario the
handlers must hold no call; at exit the server must have freed every block.

Usage: grpc_test.py GRPC_ECHO_SERVER. Prints one line per check and ends with
"grpc: N passed, N failed". Every process it starts, it stops.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import grpc

SERVER = None
ECHO = "/aspen.test.Echo/"
MAX_MESSAGE = 3 * 1024 * 1024 // 2 + 512 * 1024  # ASPEN_GRPC_MAX_MESSAGE_BYTES
SEND_QUEUE = 1024 * 1024  # ASPEN_GRPC_CALL_SEND_QUEUE_BYTES
passed = 0
failed = 0
procs = []


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}", flush=True)
    return cond


class Server:
    def __init__(self, *args):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SERVER, *args], stdout=subprocess.PIPE, stderr=self.err)
        procs.append(self.proc)
        line = self.proc.stdout.readline().decode()
        fields = dict(kv.split("=") for kv in line.split())
        self.port = int(fields["grpc_port"])
        self.http_port = int(fields["http_port"])
        self.target = f"127.0.0.1:{self.port}"
        self.channel = self.new_channel()

    def new_channel(self, port=None):
        return grpc.insecure_channel(
            f"127.0.0.1:{port or self.port}",
            options=[("grpc.max_receive_message_length", 64 << 20),
                     ("grpc.max_send_message_length", 64 << 20),
                     ("grpc.enable_retries", 0)])

    def stats(self, fresh=False):
        ch = self.new_channel() if fresh else self.channel
        text = ch.unary_unary(ECHO + "Stats")(b"", timeout=10).decode()
        if fresh:
            ch.close()
        return {k: int(v) for k, v in (line.split("=") for line in text.split())}

    def wait_stat(self, pred, secs=10):
        deadline = time.time() + secs
        while True:
            st = self.stats()
            if pred(st) or time.time() > deadline:
                return st
            time.sleep(0.05)

    def no_calls_held(self):
        st = self.wait_stat(lambda s: s["held_calls"] == 0 and s["calls_active"] <= 1)
        # The Stats call itself is active while it runs.
        return st["held_calls"] == 0 and st["calls_active"] <= 1

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.channel.close()
        if self.proc.poll() is None:
            if sig:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.seek(0)
        return self.proc.returncode, self.err.read().decode(errors="replace")


def code_of(fn):
    try:
        fn()
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def curl(port, path, body, headers=(), method="POST", max_time=10):
    """An h2c request with curl: (http status, response headers and trailers, body).

    body None sends the headers alone, with END_STREAM. Answers decided from the headers
    must be tested that way: the server ends such a stream with RST_STREAM(NO_ERROR) right
    after its response (RFC 9113 section 8.1), and curl, still uploading a body then,
    sometimes drops the response it already received."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(body or b"")
        f.flush()
        data = ["--data-binary", "@" + f.name] if body is not None else []
        args = ["curl", "-sv", "--http2-prior-knowledge", "--max-time", str(max_time),
                "-X", method, *data, "-o", "-", f"http://127.0.0.1:{port}{path}"]
        hdrs = {"content-type": "application/grpc", "te": "trailers"}
        hdrs.update(dict(headers))
        for k, v in hdrs.items():
            args += ["-H", f"{k}: {v}" if v is not None else f"{k}:"]
        r = subprocess.run(args, capture_output=True, timeout=max_time + 5)
    status, fields = 0, {}
    for line in r.stderr.decode(errors="replace").splitlines():
        if line.startswith("< HTTP/2 "):
            status = int(line.split()[2])
        elif line.startswith("< ") and ":" in line:
            k, _, v = line[2:].partition(":")
            fields[k.strip().lower()] = v.strip()
    return status, fields, r.stdout


def frame(msg, flag=0):
    return bytes([flag]) + struct.pack(">I", len(msg)) + msg


def h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def read_frames(sock, secs):
    """Reads HTTP/2 frames until EOF or secs pass: ([(type, flags, stream, payload)], eof)."""
    sock.settimeout(0.05)
    data, eof, deadline = b"", False, time.time() + secs
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionError:
            eof = True
            break
        if not chunk:
            eof = True
            break
        data += chunk
    frames, pos = [], 0
    while len(data) - pos >= 9:
        n = struct.unpack(">I", b"\0" + data[pos:pos + 3])[0]
        if len(data) - pos - 9 < n:
            break
        frames.append((data[pos + 3], data[pos + 4], struct.unpack(">I", data[pos + 5:pos + 9])[0] & 0x7fffffff,
                       data[pos + 9:pos + 9 + n]))
        pos += 9 + n
    return frames, eof


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------

def test_kinds(s):
    ch = s.channel
    unary = ch.unary_unary(ECHO + "Unary")
    check(unary(b"hello", timeout=5) == b"hello", "unary: echo")
    check(unary(b"", timeout=5) == b"", "unary: empty message")
    big = os.urandom(1 << 20)
    check(unary(big, timeout=10) == big, "unary: 1 MiB echo")
    md = ch.unary_unary(ECHO + "Metadata")(b"", metadata=[("x-aspen-test", "v1")], timeout=5)
    check(md == b"v1", "unary: request metadata reaches the handler")

    msgs = list(ch.unary_stream(ECHO + "ServerStream")(b"5,100", timeout=5))
    check(len(msgs) == 5 and all(len(m) == 100 for m in msgs) and
          [m[:8] for m in msgs] == [b"%08d" % i for i in range(5)], "server stream: 5 messages in order")
    check(list(ch.unary_stream(ECHO + "ServerStream")(b"0,0", timeout=5)) == [],
          "server stream: no messages, status OK")
    code, _ = code_of(lambda: list(ch.unary_stream(ECHO + "ServerStream")(b"bad", timeout=5)))
    check(code == grpc.StatusCode.INVALID_ARGUMENT, "server stream: handler's error status")

    parts = [b"a" * i for i in range(10)]
    r = ch.stream_unary(ECHO + "ClientStream")(iter(parts), timeout=5)
    check(r == b"n=10 bytes=45", f"client stream: 10 messages counted ({r!r})")
    r = ch.stream_unary(ECHO + "ClientStream")(iter([b"x", b"hold", b"yy", b"zzz"]), timeout=5)
    check(r == b"n=4 bytes=10", f"client stream: a pushed-back message is redelivered ({r!r})")
    check(ch.stream_unary(ECHO + "ClientStream")(iter([]), timeout=5) == b"n=0 bytes=0",
          "client stream: no messages")

    sent = [b"m%d" % i * (i + 1) for i in range(20)]
    got = list(ch.stream_stream(ECHO + "Bidi")(iter(sent), timeout=5))
    check(got == sent, "bidi: 20 messages echoed in order")

    # A bidi call driven one message at a time: each answer arrives before the next send.
    q, done = [], threading.Event()
    cv = threading.Condition()

    def gen():
        for i in range(5):
            with cv:
                cv.wait_for(lambda: len(q) == i, timeout=5)
            yield b"ping%d" % i

    call = ch.stream_stream(ECHO + "Bidi")(gen(), timeout=10)
    for m in call:
        with cv:
            q.append(m)
            cv.notify_all()
    check(q == [b"ping%d" % i for i in range(5)], "bidi: ping-pong")
    check(s.no_calls_held(), "kinds: no call left held")


def test_concurrency(s):
    slow = s.channel.unary_unary(ECHO + "Slow")
    before = s.stats()
    t0 = time.time()
    futs = [slow.future(b"100", timeout=20) for _ in range(300)]
    results = [f.result() for f in futs]
    elapsed = time.time() - t0
    after = s.stats()
    check(all(r == b"100" for r in results), "concurrency: 300 slow calls on one channel all answered")
    check(after["connections_total"] == before["connections_total"], "concurrency: one connection")
    # 100 streams at a time (SETTINGS_MAX_CONCURRENT_STREAMS): three rounds of 100 ms at least.
    check(0.29 <= elapsed < 10, f"concurrency: the stream limit holds ({elapsed:.2f} s for 3 rounds)")
    check(after["streams_total"] - before["streams_total"] >= 300, "concurrency: 300 streams counted")
    check(s.no_calls_held(), "concurrency: no call left held")


def test_deadlines(s):
    ch = s.channel
    before = s.stats()
    t0 = time.time()
    code, _ = code_of(lambda: ch.unary_unary(ECHO + "Never")(b"", timeout=0.3))
    check(code == grpc.StatusCode.DEADLINE_EXCEEDED and time.time() - t0 < 3,
          "deadline: client sees DEADLINE_EXCEEDED")
    st = s.wait_stat(lambda st: st["cancels_Never"] > before["cancels_Never"])
    check(st["cancels_Never"] == before["cancels_Never"] + 1, "deadline: the handler got on_cancel")
    # The server's own deadline, seen on the wire (curl waits far longer).
    t0 = time.time()
    status, fields, _ = curl(s.port, ECHO + "Never", frame(b""), {"grpc-timeout": "200m"})
    elapsed = time.time() - t0
    check(status == 200 and fields.get("grpc-status") == "4" and 0.15 < elapsed < 3,
          f"deadline: server sends DEADLINE_EXCEEDED itself after grpc-timeout ({elapsed:.2f} s, {fields.get('grpc-status')})")
    # A deadline that passes while the request is still arriving.
    status, fields, _ = curl(s.port, ECHO + "Unary", None, {"grpc-timeout": "0n"})
    check(fields.get("grpc-status") in ("4", "13"), "deadline: 0n expires at once")
    status, fields, _ = curl(s.port, ECHO + "Unary", None, {"grpc-timeout": "1x"})
    check(fields.get("grpc-status") == "13", "deadline: malformed grpc-timeout is INTERNAL")
    st = s.wait_stat(lambda st: st["held_calls"] == 0)
    check(st["status_DEADLINE_EXCEEDED"] >= before["status_DEADLINE_EXCEEDED"] + 1,
          "deadline: counted by status")
    check(s.no_calls_held(), "deadline: no call left held")


def test_cancellation(s):
    ch = s.channel
    before = s.stats()
    fut = ch.unary_unary(ECHO + "Never").future(b"", timeout=30)
    s.wait_stat(lambda st: st["held_calls"] >= 1)
    fut.cancel()
    st = s.wait_stat(lambda st: st["cancels_Never"] > before["cancels_Never"])
    check(st["cancels_Never"] == before["cancels_Never"] + 1, "cancel: unary handler told when the client cancels")
    # Without a deadline the call has no timer: the handler's release inside on_cancel is
    # what frees it.
    fut = ch.unary_unary(ECHO + "Never").future(b"")
    s.wait_stat(lambda st: st["held_calls"] >= 1)
    fut.cancel()
    st = s.wait_stat(lambda st: st["cancels_Never"] > before["cancels_Never"] + 1)
    check(st["cancels_Never"] == before["cancels_Never"] + 2, "cancel: a call without deadline, cancelled")
    bidi = ch.stream_stream(ECHO + "Bidi")(iter([b"a", b"b"]))
    it = ch.stream_stream(ECHO + "Bidi")(iter(lambda: time.sleep(0.05) or b"tick", None))
    check(next(it) == b"tick", "cancel: an endless bidi call is running")
    it.cancel()
    st = s.wait_stat(lambda st: st["cancels_Bidi"] > before["cancels_Bidi"])
    check(st["cancels_Bidi"] == before["cancels_Bidi"] + 1, "cancel: bidi handler told when the client cancels")
    check(list(bidi) == [b"a", b"b"], "cancel: another bidi call on the channel unaffected")
    it = ch.unary_stream(ECHO + "ServerStream")(b"100000000,1000", timeout=30)
    for _ in range(10):
        next(it)
    it.cancel()
    st = s.wait_stat(lambda st: st["cancels_ServerStream"] > before["cancels_ServerStream"])
    check(st["cancels_ServerStream"] == before["cancels_ServerStream"] + 1,
          "cancel: streaming handler told when the client cancels mid-stream")
    check(s.no_calls_held(), "cancel: no call left held")
    check(ch.unary_unary(ECHO + "Unary")(b"after", timeout=5) == b"after", "cancel: channel still serves")


def test_errors(s):
    ch = s.channel
    code, details = code_of(lambda: ch.unary_unary(ECHO + "Nope")(b"", timeout=5))
    check(code == grpc.StatusCode.UNIMPLEMENTED and "Nope" in details, "unknown method: UNIMPLEMENTED")
    code, _ = code_of(lambda: ch.unary_unary("/other.Service/Method")(b"", timeout=5))
    check(code == grpc.StatusCode.UNIMPLEMENTED, "unknown service: UNIMPLEMENTED")
    text = "key not found: caf\u00e9 100% \u2713\nline"
    code, details = code_of(lambda: ch.unary_unary(ECHO + "Fail")(("5:" + text).encode(), timeout=5))
    check(code == grpc.StatusCode.NOT_FOUND and details == text,
          f"status message survives percent-encoding ({details!r})")
    unary = ch.unary_unary(ECHO + "Unary")
    exact = os.urandom(MAX_MESSAGE)
    check(unary(exact, timeout=20) == exact, "size: a message at the limit is accepted")
    code, details = code_of(lambda: unary(b"x" * (MAX_MESSAGE + 1), timeout=20))
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"size: one byte over is RESOURCE_EXHAUSTED ({details})")
    check(unary(b"still", timeout=5) == b"still", "size: the connection stays usable")
    # Exact HTTP/2 answers, with curl.
    status, fields, _ = curl(s.port, ECHO + "Nope", None)
    check(status == 200 and fields.get("grpc-status") == "12" and fields.get("content-type") == "application/grpc",
          "unknown method: trailers-only response with grpc-status 12")
    status, fields, _ = curl(s.port, ECHO + "Unary", None, {"content-type": "text/plain"})
    check(status == 415, f"content-type text/plain: HTTP 415 ({status})")
    status, fields, body = curl(s.port, ECHO + "Unary", frame(b"ok"), {"content-type": "application/grpc+proto"})
    check(status == 200 and fields.get("grpc-status") == "0" and body == frame(b"ok"),
          "content-type application/grpc+proto accepted")
    status, fields, _ = curl(s.port, ECHO + "Unary", None, {"content-type": "application/grpc+json"})
    check(fields.get("grpc-status") == "12", "content-type application/grpc+json: UNIMPLEMENTED")
    status, fields, _ = curl(s.port, ECHO + "Unary", None, method="PUT")
    check(status == 405, f"method PUT: HTTP 405 ({status})")
    status, fields, _ = curl(s.port, ECHO + "Unary", frame(b"x", flag=1))
    check(fields.get("grpc-status") == "12", "compressed message: UNIMPLEMENTED")
    status, fields, _ = curl(s.port, ECHO + "Unary", frame(b"0123456789")[:8])
    check(fields.get("grpc-status") == "13", "message cut short: INTERNAL")
    status, fields, _ = curl(s.port, ECHO + "Unary", None)
    check(fields.get("grpc-status") == "13", "unary without a message: INTERNAL")
    status, fields, _ = curl(s.port, ECHO + "Unary", frame(b"a") + frame(b"b"))
    check(fields.get("grpc-status") == "13", "unary with two messages: INTERNAL")
    status, fields, body = curl(s.port, ECHO + "Unary", frame(b"plain"))
    check(status == 200 and fields.get("grpc-status") == "0" and body == frame(b"plain"),
          "curl: headers, one message, trailers")
    check(s.no_calls_held(), "errors: no call left held")


def test_garbage(s):
    ch = s.channel
    before = s.stats()
    hold = ch.unary_unary(ECHO + "Slow").future(b"1500", timeout=20)  # in flight meanwhile
    inputs = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        os.urandom(70000),
        PREFACE + h2_frame(4, 0, 0, b"") + b"\xff" * 64,  # a frame header saying 16 MiB
        PREFACE + h2_frame(4, 0, 0, b"") + h2_frame(1, 4, 2, b"\x00\x01"),  # even stream id
        PREFACE + h2_frame(4, 0, 0, b"") + h2_frame(0, 0, 1, b"data on an idle stream"),
        PREFACE[:10],
    ]
    closed = 0
    for data in inputs:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
            try:
                sock.sendall(data)
                if data == PREFACE[:10]:
                    sock.shutdown(socket.SHUT_WR)
            except ConnectionError:
                pass
            _, eof = read_frames(sock, 5)
            closed += eof
    check(closed == len(inputs), f"garbage: the server closed each bad connection ({closed}/{len(inputs)})")
    check(hold.result() == b"1500", "garbage: a call in flight on another connection completes")
    check(ch.unary_unary(ECHO + "Unary")(b"alive", timeout=5) == b"alive", "garbage: the server keeps serving")
    st = s.stats()
    check(st["connection_errors"] >= before["connection_errors"] + 4,
          f"garbage: counted as connection errors ({st['connection_errors'] - before['connection_errors']})")
    # The same on the HTTP/1.1 port: junk is an HTTP error, junk after the preface an HTTP/2 one.
    for data in [b"\x16\x03\x01garbage\r\n\r\n", PREFACE + b"\x00" * 3 + b"\xff" * 40]:
        with socket.create_connection(("127.0.0.1", s.http_port), timeout=5) as sock:
            sock.sendall(data)
            _, eof = read_frames(sock, 5)
            check(eof, "garbage on the HTTP port: connection closed")
    check(s.no_calls_held(), "garbage: no call left held")


def test_slow_reader():
    s = Server()  # its own process: the queue high-water mark and RSS are this test's
    before = s.stats()
    ch = s.new_channel()
    size = 64 * 1024
    it = ch.unary_stream(ECHO + "ServerStream")(b"4000,%d" % size, timeout=60)  # 250 MiB
    got = 0
    t_end = time.time() + 3
    while time.time() < t_end:
        m = next(it)
        assert len(m) == size
        got += 1
        time.sleep(0.01)  # ~6 MiB/s: far slower than the server could send
    st = s.stats()
    sent_possible = 4000 * size
    check(st["stream_busy"] > before["stream_busy"], f"slow reader: the handler met back-pressure ({st['stream_busy'] - before['stream_busy']} BUSY)")
    check(st["send_queued_bytes_max"] <= SEND_QUEUE + size + 5,
          f"slow reader: one call's queue stayed bounded (max {st['send_queued_bytes_max']} bytes)")
    check(st["send_queued_bytes"] <= SEND_QUEUE + size + 5, f"slow reader: queued now {st['send_queued_bytes']} bytes")
    growth = st["rss_kib"] - before["rss_kib"]
    check(growth < 48 * 1024, f"slow reader: server RSS grew {growth} KiB while {got} of {sent_possible >> 20} MiB were read")
    it.cancel()
    st = s.wait_stat(lambda st: st["cancels_ServerStream"] > before["cancels_ServerStream"])
    check(st["cancels_ServerStream"] == before["cancels_ServerStream"] + 1, "slow reader: cancel reaches the handler")
    check(st["send_queued_bytes"] == 0, "slow reader: the queue is freed")
    ch.close()
    check(s.no_calls_held(), "slow reader: no call left held")
    code, err = s.stop()
    check(code == 0 and "blocks outstanding 0" in err, f"slow reader: server stopped cleanly (exit {code})")


def test_handover(s):
    before = s.stats()
    ch = s.new_channel(s.http_port)
    check(ch.unary_unary(ECHO + "Unary")(b"via http port", timeout=5) == b"via http port",
          "handover: gRPC on the HTTP/1.1 port")
    msgs = list(ch.unary_stream(ECHO + "ServerStream")(b"3,10", timeout=5))
    check(len(msgs) == 3, "handover: streaming on the HTTP/1.1 port")
    with urllib.request.urlopen(f"http://127.0.0.1:{s.http_port}/x", timeout=5) as r:
        check(r.read() == b"http ok\n", "handover: plain HTTP still served there")
    st = s.stats()
    check(st["http_handed_over"] == before["http_handed_over"] + 1, "handover: counted once")
    ch.close()


def test_keepalive():
    s = Server("--keepalive-ms", "300", "--handshake-ms", "400")
    # grpc-python reads its socket only while it has calls, so an idle channel of it would
    # miss the pings: every Stats call here goes on a fresh connection.
    before = s.stats(fresh=True)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(PREFACE + h2_frame(4, 0, 0, b""))
        frames, eof = read_frames(sock, 3)
        pings = [f for f in frames if f[0] == 6 and not f[1] & 1]
        check(len(pings) >= 1, f"keepalive: the server pings an idle connection ({len(pings)} PING)")
        check(eof, "keepalive: no PING ACK -> connection closed")
    st = s.stats(fresh=True)
    check(st["keepalive_timeouts"] == before["keepalive_timeouts"] + 1, "keepalive: counted")
    # A client busy with a call answers the pings: its connection outlives several intervals.
    ch = s.new_channel()
    check(ch.unary_unary(ECHO + "Slow")(b"1500", timeout=10) == b"1500",
          "keepalive: a call across five ping intervals completes")
    ch.close()
    st = s.stats(fresh=True)
    check(st["keepalive_timeouts"] == before["keepalive_timeouts"] + 1, "keepalive: the live client was not cut off")
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        t0 = time.time()
        _, eof = read_frames(sock, 3)
        check(eof and time.time() - t0 < 2.5, "handshake: a silent connection is closed after the deadline")
    code, err = s.stop()
    check(code == 0, f"keepalive server stopped cleanly (exit {code})")


def test_graceful_close(s):
    ch = s.channel
    slow = ch.unary_unary(ECHO + "Slow").future(b"1000", timeout=20)
    s.wait_stat(lambda st: st["held_calls"] >= 1)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
    except OSError:
        refused = True
    check(refused, "graceful close: new connections refused")
    check(slow.result() == b"1000", "graceful close: the call in flight completes")
    code, err = s.stop(sig=None, timeout=10)
    check(code == 0 and time.time() - t0 < 8, f"graceful close: exit 0 ({code})")
    check("blocks outstanding 0" in err, "graceful close: every block freed")


def main():
    global SERVER
    SERVER = sys.argv[1]
    only = os.environ.get("ASPEN_TEST_SCENARIO", "")
    s = Server()
    try:
        for name, fn in [("kinds", test_kinds), ("concurrency", test_concurrency),
                         ("deadlines", test_deadlines), ("cancellation", test_cancellation),
                         ("errors", test_errors), ("garbage", test_garbage),
                         ("handover", test_handover)]:
            if only in name:
                print(f"== {name}", flush=True)
                fn(s)
        for name, fn in [("slow_reader", test_slow_reader), ("keepalive", test_keepalive)]:
            if only in name:
                print(f"== {name}", flush=True)
                fn()
        print("== graceful close", flush=True)
        test_graceful_close(s)
    except Exception as e:  # a crash is a failure, not a skipped report
        import traceback
        traceback.print_exc()
        check(False, f"scenario raised {type(e).__name__}: {e}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    print(f"grpc: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
