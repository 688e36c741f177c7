/**
 * The source of a dependency-free Python web app for tests: it answers `label` on every path
 * (with `echo`, `label|$GREETING|its arguments`), exits with code 7 on /crash, can wait before
 * listening, or refuse to start at all.
 */
export function labelApp(label: string, options: { echo?: boolean; startDelayS?: number; failToStart?: boolean } = {}): string {
  return `
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
${options.failToStart ? "sys.exit('this release cannot start')" : ""}
time.sleep(${options.startDelayS ?? 0})
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            os._exit(7)
        body = ${options.echo ? `f"${label}|{os.environ.get('GREETING', '')}|{' '.join(sys.argv[1:])}"` : `"${label}"`}.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;
}
