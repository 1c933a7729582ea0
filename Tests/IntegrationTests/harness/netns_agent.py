"""Runs inside a network namespace a test created (`ip netns exec NS python3 netns_agent.py ...`), so
tests can serve and probe addresses that exist only there (test_port_lookup.py). Standard library only.

  serve ADDR PORTS_FILE SECONDS [TEXT]  TCP and UDP on every port of PORTS_FILE (JSON list) at ADDR; each
                                        answers TEXT, or by default the port it was reached on; prints "ready"
  probe ADDR PORTS_FILE SOURCE          one TCP connection and one UDP datagram per port, from address SOURCE;
                                        prints JSON with the answers and, for UDP, the reply's source address and port
  refused ADDR PORTS_FILE SOURCE        per port: is TCP refused, is UDP answered with port unreachable

Clients bind SOURCE because a listener over 1..65535 owns every port of its address: a client there would have
its own replies steered to the listener.
"""
import json
import resource
import selectors
import socket
import sys
import time


def serve(addr, ports, seconds, text=None):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    for p in ports:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, p))
        t.listen(512)
        t.setblocking(False)
        sel.register(t, selectors.EVENT_READ, ("tcp", p))
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((addr, p))
        u.setblocking(False)
        sel.register(u, selectors.EVENT_READ, ("udp", p))
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            kind, p = key.data
            answer = (text if text is not None else str(p)).encode()
            try:
                if kind == "tcp":
                    c, _ = key.fileobj.accept()
                    c.setblocking(True)
                    c.settimeout(2)
                    c.sendall(answer + b"\n")
                    c.close()
                else:
                    while True:
                        data, peer = key.fileobj.recvfrom(2048)
                        key.fileobj.sendto(answer, peer)
            except (BlockingIOError, OSError):
                pass


def probe(addr, ports, source):
    out = {"tcp": {}, "udp": {}}
    for p in ports:
        try:
            with socket.create_connection((addr, p), timeout=3, source_address=(source, 0)) as s:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    data += chunk
                out["tcp"][str(p)] = data.decode().strip()
        except OSError as e:
            out["tcp"][str(p)] = f"error {e.errno}"
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((source, 0))
        u.settimeout(3)
        try:
            u.sendto(b"ping", (addr, p))
            data, src = u.recvfrom(2048)
            out["udp"][str(p)] = [data.decode(), src[0], src[1]]
        except OSError as e:
            out["udp"][str(p)] = [f"error {getattr(e, 'errno', None)}", "", 0]
        finally:
            u.close()
    print(json.dumps(out))


def refused(addr, ports, source):
    out = {"tcp": {}, "udp": {}}
    for p in ports:
        try:
            with socket.create_connection((addr, p), timeout=2, source_address=(source, 0)) as s:
                out["tcp"][str(p)] = "connected"
        except ConnectionRefusedError:
            out["tcp"][str(p)] = "refused"
        except OSError as e:
            out["tcp"][str(p)] = f"error {e.errno}"
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((source, 0))
        u.settimeout(2)
        try:
            u.connect((addr, p))
            u.send(b"ping")
            u.recv(2048)
            out["udp"][str(p)] = "answered"
        except ConnectionRefusedError:
            out["udp"][str(p)] = "refused"
        except OSError as e:
            out["udp"][str(p)] = f"error {getattr(e, 'errno', None)}"
        finally:
            u.close()
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, addr, ports_file = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(ports_file) as f:
        ports = json.load(f)
    if cmd == "serve":
        serve(addr, ports, float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    elif cmd == "probe":
        probe(addr, ports, sys.argv[4])
    elif cmd == "refused":
        refused(addr, ports, sys.argv[4])
    else:
        sys.exit(f"unknown command {cmd}")
