"""What a hostile build or app tries: read secrets, reach the control plane, touch others' files.

Prints one line, `PROBE <json>`, saying what worked. Targets come from the environment so the
test decides them: PROBE_CONNECT ("host:port ..."), PROBE_WRITE and PROBE_READ (paths).
"""
import json
import os
import socket

result = {"uid": os.getuid(), "gid": os.getgid(), "pids": [], "environ": "", "connect": {}, "write": {}, "read": {}}

for entry in os.listdir("/proc"):
    if not entry.isdigit():
        continue
    result["pids"].append(int(entry))
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{entry}/{name}", "rb") as f:
                result["environ"] += f.read().replace(b"\0", b" ").decode("utf-8", "replace") + "\n"
        except OSError:
            pass
result["environ"] += "\n".join(f"{k}={v}" for k, v in os.environ.items())

for target in os.environ.get("PROBE_CONNECT", "").split():
    host, port = target.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=3) as conn:
            # What the service answers someone without credentials: Redis speaks first to PING,
            # HTTP (storage, the API) to a bare GET of an API route.
            conn.settimeout(3)
            conn.sendall(b"PING\r\n" if os.environ.get("PROBE_REDIS_PORT") == port else f"GET /v1/apps HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            try:
                reply = conn.recv(200).decode("utf-8", "replace")
            except OSError:
                reply = ""
            result["connect"][target] = "connected: " + reply.split("\r\n")[0]
    except OSError as error:
        result["connect"][target] = type(error).__name__

for path in os.environ.get("PROBE_WRITE", "").split():
    try:
        with open(path, "a") as f:
            f.write("written by a probe\n")
        result["write"][path] = "written"
    except OSError as error:
        result["write"][path] = type(error).__name__

for path in os.environ.get("PROBE_READ", "").split():
    try:
        with open(path, "rb") as f:
            f.read(16)
        result["read"][path] = "read"
    except OSError as error:
        result["read"][path] = type(error).__name__

print("PROBE " + json.dumps(result), flush=True)
