"""A one-purpose HTTP shim in front of fake-gcs-server, started by scripts/emulators.sh.

object_store's GCS client uploads with the XML API (`PUT /<bucket>/<object>`), which real GCS
accepts. fake-gcs-server only routes that request to an upload when it looks like a signed URL
(an `X-Goog-Algorithm` query parameter); otherwise it answers 400 "invalid uploadType". This shim
adds that parameter to XML-style PUTs (and, as GCS's XML API does, returns the new object's
`ETag` and `x-goog-generation` headers, which fake-gcs-server only puts in the JSON body) and
forwards every request (any method, headers and body)
unchanged otherwise, so the Rust GCS backend is tested against the emulator as it would run
against GCS.

usage: gcs_xml_put_shim.py LISTEN_PORT UPSTREAM_URL
"""

import http.client
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = urllib.parse.urlsplit(sys.argv[2])
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class Shim(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("shim: " + (fmt % args) + "\n")

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path
        xml_put = self.command == "PUT" and not path.startswith(("/storage/", "/upload/", "/download/"))
        if xml_put and "X-Goog-Algorithm" not in path:
            path += ("&" if "?" in path else "?") + "X-Goog-Algorithm=GOOG4-RSA-SHA256"
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if xml_put and resp.status == 200 and not resp.getheader("ETag"):
            meta = json.loads(data or b"{}")
            self.send_header("ETag", '"%s"' % meta.get("etag", meta.get("md5Hash", "")))
            self.send_header("x-goog-generation", str(meta.get("generation", "")))
            data = b""
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = forward


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Shim).serve_forever()
