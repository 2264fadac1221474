"""A stand-in for `python -m tensorboard.main --logdir DIR --port P --host 127.0.0.1` in GUI tests: answers
HTTP on that port after a short delay, naming the folders it was given."""
import argparse
import http.server
import time

parser = argparse.ArgumentParser()
parser.add_argument("--logdir")
parser.add_argument("--logdir_spec")
parser.add_argument("--load_fast")
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--host", default="127.0.0.1")
args = parser.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = f"fake TensorBoard for {args.logdir or args.logdir_spec}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


time.sleep(0.3)
http.server.HTTPServer((args.host, args.port), Handler).serve_forever()
