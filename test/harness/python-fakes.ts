import { buildPackageWheel } from "./wheels";

/**
 * Offline stand-ins for gunicorn, uvicorn, Flask, FastAPI, Starlette and Django, as wheels under
 * their real names, so tests build and serve Python web apps with `PIP_FIND_LINKS` +
 * `PIP_NO_INDEX`. They keep the parts Slipway relies on: the console scripts and their options
 * (gunicorn reads GUNICORN_CMD_ARGS, then its command line; workers default to WEB_CONCURRENCY),
 * gunicorn importing its `-k` worker class, the frameworks' app objects, `manage.py collectstatic`
 * failing without STATIC_ROOT. Every answer carries `X-Fake-Server`: which server and with what
 * settings it serves, e.g. `gunicorn workers=1 timeout=600 worker-class=sync access-logfile=- error-logfile=-`.
 * The real packages are exercised in test/e2e/real-apps.test.ts.
 */

const SERVE = String.raw`
"""Serving for the fakes: WSGI over wsgiref, ASGI over a small asyncio HTTP/1.1 server."""
import asyncio, importlib, os, sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def load(spec):
    module, _, variable = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    # As gunicorn: "module:create_app()" calls the factory.
    factory = variable.endswith("()")
    target = getattr(importlib.import_module(module), variable[:-2] if factory else variable or "application")
    return target() if factory else target


def serve_wsgi(app, host, port, banner, access_log):
    class Handler(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):
            if access_log:
                print(f'{self.client_address[0]} - - "{self.requestline}" {code} {size}', flush=True)

    def wrapped(environ, start_response):
        def start(status, headers, exc_info=None):
            return start_response(status, list(headers) + [("X-Fake-Server", banner)], exc_info)
        return app(environ, start)

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    httpd = make_server(host, int(port), wrapped, server_class=Server, handler_class=Handler)
    print(f"[INFO] Listening at: http://{host}:{port}", file=sys.stderr, flush=True)
    httpd.serve_forever()


def serve_asgi(app, host, port, banner, access_log):
    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except Exception:
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        path, _, query = target.partition("?")
        headers = []
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
        length = int(dict(headers).get(b"content-length", b"0") or 0)
        body = await reader.readexactly(length) if length else b""
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
                 "headers": headers, "client": ("127.0.0.1", 0), "server": (host, int(port))}
        response = {"status": 500, "headers": [], "body": b""}

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                response["body"] += message.get("body", b"")

        await app(scope, receive, send)
        out = f"HTTP/1.1 {response['status']} OK\r\n".encode()
        for name, value in response["headers"]:
            if name.lower() not in (b"content-length", b"connection"):
                out += name + b": " + value + b"\r\n"
        out += f"Content-Length: {len(response['body'])}\r\nX-Fake-Server: {banner}\r\nConnection: close\r\n\r\n".encode()
        writer.write(out + response["body"])
        await writer.drain()
        writer.close()
        if access_log:
            print(f'127.0.0.1 - "{method} {target}" {response["status"]}', flush=True)

    async def main():
        server = await asyncio.start_server(handle, host, int(port))
        print(f"INFO: running on http://{host}:{port}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
`;

const GUNICORN = String.raw`
import argparse, importlib, os, shlex, sys
from gunicorn._serve import load, serve_asgi, serve_wsgi


def parser():
    p = argparse.ArgumentParser(prog="gunicorn")
    p.add_argument("-b", "--bind", action="append")
    p.add_argument("-w", "--workers", type=int)
    p.add_argument("-k", "--worker-class")
    p.add_argument("-t", "--timeout", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--access-logfile")
    p.add_argument("--error-logfile")
    p.add_argument("--access-logformat")
    p.add_argument("--chdir")
    p.add_argument("app", nargs="?")
    return p


def run():
    # As gunicorn: GUNICORN_CMD_ARGS first, the command line over it; workers default to WEB_CONCURRENCY.
    from_env = parser().parse_args(shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")))
    from_cli = parser().parse_args(sys.argv[1:])
    cfg = {"workers": int(os.environ.get("WEB_CONCURRENCY", 1)), "timeout": 30, "worker_class": "sync",
           "access_logfile": None, "error_logfile": "-", "bind": ["127.0.0.1:8000"]}
    for args in (from_env, from_cli):
        for key, value in vars(args).items():
            if value is not None and key != "app":
                cfg[key] = value
    spec = from_cli.app or from_env.app
    if not spec:
        sys.exit("Error: No application module specified.")
    host, _, port = cfg["bind"][-1].rpartition(":")
    banner = (f"gunicorn workers={cfg['workers']} timeout={cfg['timeout']} worker-class={cfg['worker_class']} "
              f"access-logfile={cfg['access_logfile']} error-logfile={cfg['error_logfile']}"
              + (f" threads={cfg['threads']}" if cfg.get("threads") else ""))
    if cfg["worker_class"] == "sync":
        serve_wsgi(load(spec), host, port, banner, cfg["access_logfile"] == "-")
    else:
        module, _, name = cfg["worker_class"].rpartition(".")
        getattr(importlib.import_module(module), name)  # gunicorn imports its worker class
        serve_asgi(load(spec), host, port, banner, cfg["access_logfile"] == "-")
`;

const UVICORN = String.raw`
import argparse, os
from uvicorn._serve import load, serve_asgi


def main():
    p = argparse.ArgumentParser(prog="uvicorn")
    p.add_argument("app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 1)))
    args = p.parse_args()
    serve_asgi(load(args.app), args.host, args.port, f"uvicorn workers={args.workers}", True)
`;

const FLASK = String.raw`
import json


class Flask:
    def __init__(self, import_name, **kwargs):
        self.routes = {}

    def route(self, rule, **kwargs):
        def decorator(view):
            self.routes[rule] = view
            return view
        return decorator

    get = route

    def __call__(self, environ, start_response):
        view = self.routes.get(environ.get("PATH_INFO") or "/")
        if view is None:
            start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
            return [b"not found"]
        result = view()
        structured = isinstance(result, (dict, list))
        body = (json.dumps(result) if structured else str(result)).encode()
        start_response("200 OK", [("Content-Type", "application/json" if structured else "text/html"), ("Content-Length", str(len(body)))])
        return [body]
`;

const FASTAPI = String.raw`
import inspect, json


class FastAPI:
    def __init__(self, **kwargs):
        self.routes = {}

    def get(self, path, **kwargs):
        def decorator(view):
            self.routes[path] = view
            return view
        return decorator

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        view = self.routes.get(scope["path"])
        status, result = (404, {"detail": "Not Found"}) if view is None else (200, view())
        if inspect.isawaitable(result):
            result = await result
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(result).encode()})
`;

const STARLETTE_APPLICATIONS = String.raw`
import inspect
from starlette.responses import PlainTextResponse


class Starlette:
    def __init__(self, debug=False, routes=None, **kwargs):
        self.routes = {route.path: route.endpoint for route in routes or []}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        endpoint = self.routes.get(scope["path"])
        response = PlainTextResponse("Not Found", status_code=404) if endpoint is None else endpoint(scope)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)
`;

const STARLETTE_RESPONSES = String.raw`
import json


class Response:
    media_type = "text/plain"

    def __init__(self, content="", status_code=200):
        self.body = content.encode() if isinstance(content, str) else content
        self.status_code = status_code

    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": self.status_code, "headers": [(b"content-type", self.media_type.encode())]})
        await send({"type": "http.response.body", "body": self.body})


class PlainTextResponse(Response):
    pass


class JSONResponse(Response):
    media_type = "application/json"

    def __init__(self, content, status_code=200):
        super().__init__(json.dumps(content), status_code)
`;

const DJANGO_FAKE = String.raw`
import importlib, os


def settings():
    return importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])


class Request:
    def __init__(self, method, path):
        self.method = method
        self.path = path


def dispatch(method, path):
    urls = importlib.import_module(settings().ROOT_URLCONF)
    for route, view in urls.urlpatterns:
        if "/" + route == path:
            return view(Request(method, path))
    from django.http import HttpResponse
    return HttpResponse("Not Found", status=404)
`;

const DJANGO_HTTP = String.raw`
import json


class HttpResponse:
    def __init__(self, content=b"", status=200, content_type="text/html; charset=utf-8"):
        self.content = content.encode() if isinstance(content, str) else content
        self.status_code = status
        self.content_type = content_type


class JsonResponse(HttpResponse):
    def __init__(self, data, **kwargs):
        super().__init__(json.dumps(data), content_type="application/json")
`;

const DJANGO_WSGI = String.raw`
from django._fake import dispatch, settings


def get_wsgi_application():
    settings()  # as django.setup(): the settings module must import
    def application(environ, start_response):
        response = dispatch(environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/")
        start_response(f"{response.status_code} X", [("Content-Type", response.content_type), ("Content-Length", str(len(response.content)))])
        return [response.content]
    return application
`;

const DJANGO_ASGI = String.raw`
from django._fake import dispatch, settings


def get_asgi_application():
    settings()
    async def application(scope, receive, send):
        if scope["type"] != "http":
            return
        response = dispatch(scope["method"], scope["path"])
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(b"content-type", response.content_type.encode()), (b"x-django-interface", b"asgi")]})
        await send({"type": "http.response.body", "body": response.content})
    return application
`;

const DJANGO_MANAGEMENT = String.raw`
import os, sys
from django._fake import settings


def execute_from_command_line(argv=None):
    argv = argv or sys.argv
    command = argv[1] if len(argv) > 1 else "help"
    if command == "collectstatic":
        root = getattr(settings(), "STATIC_ROOT", None)
        if not root:
            print("Traceback (most recent call last):", file=sys.stderr)
            print("django.core.exceptions.ImproperlyConfigured: You're using the staticfiles app without having set the STATIC_ROOT setting to a filesystem path.", file=sys.stderr)
            sys.exit(1)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "fake.css"), "w") as f:
            f.write("body {}\n")
        print(f"1 static file copied to '{root}'.")
        return
    print(f"fake django: {command}")
`;

/** Writes the fake wheels into `dir` (a PIP_FIND_LINKS directory). */
export function buildFakePythonWheels(dir: string): void {
  buildPackageWheel(dir, {
    name: "gunicorn",
    version: "23.0.0",
    files: { "gunicorn/__init__.py": "", "gunicorn/_serve.py": SERVE, "gunicorn/app/__init__.py": "", "gunicorn/app/wsgiapp.py": GUNICORN },
    scripts: { gunicorn: "gunicorn.app.wsgiapp:run" },
  });
  buildPackageWheel(dir, {
    name: "uvicorn",
    version: "0.30.0",
    files: {
      "uvicorn/__init__.py": "",
      "uvicorn/_serve.py": SERVE,
      "uvicorn/main.py": UVICORN,
      "uvicorn/workers.py": 'class UvicornWorker:\n    """gunicorn imports it for -k; the fake gunicorn then serves ASGI itself."""\n',
    },
    scripts: { uvicorn: "uvicorn.main:main" },
  });
  buildPackageWheel(dir, { name: "flask", version: "3.1.0", files: { "flask/__init__.py": FLASK } });
  buildPackageWheel(dir, { name: "fastapi", version: "0.115.0", files: { "fastapi/__init__.py": FASTAPI } });
  buildPackageWheel(dir, {
    name: "starlette",
    version: "0.41.0",
    files: {
      "starlette/__init__.py": "",
      "starlette/applications.py": STARLETTE_APPLICATIONS,
      "starlette/responses.py": STARLETTE_RESPONSES,
      "starlette/routing.py": "class Route:\n    def __init__(self, path, endpoint, **kwargs):\n        self.path = path\n        self.endpoint = endpoint\n",
    },
  });
  buildPackageWheel(dir, {
    name: "django",
    version: "5.1.0",
    files: {
      "django/__init__.py": "VERSION = (5, 1, 0, 'final', 0)\n",
      "django/_fake.py": DJANGO_FAKE,
      "django/http.py": DJANGO_HTTP,
      "django/urls.py": "def path(route, view, kwargs=None, name=None):\n    return (route, view)\n",
      "django/core/__init__.py": "",
      "django/core/wsgi.py": DJANGO_WSGI,
      "django/core/asgi.py": DJANGO_ASGI,
      "django/core/management/__init__.py": DJANGO_MANAGEMENT,
    },
  });
}

/** A Django project as `django-admin startproject <name>` lays it out, with one view at `/`. */
export function djangoProject(name: string, options: { body: string; staticRoot?: boolean; settings?: string[] }): Record<string, string> {
  const settingsModule = `os.environ.setdefault('DJANGO_SETTINGS_MODULE', '${name}.settings')`;
  return {
    "manage.py": [
      "#!/usr/bin/env python",
      '"""Django\'s command-line utility for administrative tasks."""',
      "import os",
      "import sys",
      "",
      "",
      "def main():",
      '    """Run administrative tasks."""',
      `    ${settingsModule}`,
      "    from django.core.management import execute_from_command_line",
      "    execute_from_command_line(sys.argv)",
      "",
      "",
      "if __name__ == '__main__':",
      "    main()",
      "",
    ].join("\n"),
    [`${name}/__init__.py`]: "",
    [`${name}/settings.py`]: [
      "from pathlib import Path",
      "BASE_DIR = Path(__file__).resolve().parent.parent",
      "SECRET_KEY = 'test-only'",
      "DEBUG = False",
      "ALLOWED_HOSTS = ['*']",
      `ROOT_URLCONF = '${name}.urls'`,
      "STATIC_URL = 'static/'",
      ...(options.staticRoot ? ["STATIC_ROOT = BASE_DIR / 'staticfiles'"] : []),
      ...(options.settings ?? []),
      "",
    ].join("\n"),
    [`${name}/urls.py`]: ["from django.http import HttpResponse", "from django.urls import path", "", `urlpatterns = [path('', lambda request: HttpResponse(${JSON.stringify(options.body)}))]`, ""].join("\n"),
    [`${name}/wsgi.py`]: ["import os", "", "from django.core.wsgi import get_wsgi_application", "", settingsModule, "", "application = get_wsgi_application()", ""].join("\n"),
    [`${name}/asgi.py`]: ["import os", "", "from django.core.asgi import get_asgi_application", "", settingsModule, "", "application = get_asgi_application()", ""].join("\n"),
  };
}
