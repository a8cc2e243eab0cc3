"""An origin for tests that answers ANY method token (Node's own HTTP server refuses extension methods such as
CCM_POST). Independent of the proxy's parser: Python's http.server reads the head; the body is read per its
Content-Length or de-chunked here. Answers JSON {method, path, headers, body}. Prints its port, then serves."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def __getattr__(self, name):
        if name.startswith('do_'):
            return self.echo
        raise AttributeError(name)

    def read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            out = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get('Content-Length', '0')))

    def echo(self):
        body = self.read_body()
        reply = json.dumps({'method': self.command, 'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()},
                            'body': body.decode('latin-1')}).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(('127.0.0.1', 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
