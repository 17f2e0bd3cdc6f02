"""A publisher's webhook receiver, written with the Standard Webhooks
reference library, for moderato's end-to-end delivery test
(tests/api/webhooks.rs).

Usage: webhook_receiver.py LOG_PATH
Prints the port it listens on (loopback), then reads the endpoint's
signing secret from its first line of stdin. Every request is verified
with `standardwebhooks.Webhook(secret).verify`; one JSON line per request
goes to LOG_PATH: the webhook-id, the attempt number for that id, whether
the signature verified, the status answered, and the payload's type,
comment and sequence. It answers 401 to a request that does not verify,
500 to the first two attempts of every event whose id ends in a multiple
of 3 (the test's "some events"), and 204 otherwise, each after 30 ms (a
receiver that takes its time, so a kill finds deliveries in flight).
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOG_PATH = sys.argv[1]
LOCK = threading.Lock()
ATTEMPTS = {}
VERIFIER = None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        headers = {name.lower(): value for name, value in self.headers.items()}
        message_id = headers.get("webhook-id", "")
        try:
            payload = VERIFIER.verify(body, headers)
            valid = True
        except WebhookVerificationError:
            payload = json.loads(body)
            valid = False
        data = payload.get("data", {})
        with LOCK:
            attempt = ATTEMPTS.get(message_id, 0) + 1
            ATTEMPTS[message_id] = attempt
            number = int(message_id.rsplit("_", 1)[-1] or 0)
            if not valid:
                status = 401
            elif number % 3 == 0 and attempt <= 2:
                status = 500
            else:
                status = 204
            record = {
                "id": message_id,
                "attempt": attempt,
                "valid": valid,
                "status": status,
                "type": payload.get("type"),
                "comment_id": data.get("comment_id"),
                "sequence": data.get("sequence"),
            }
            with open(LOG_PATH, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        time.sleep(0.03)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    global VERIFIER
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    VERIFIER = Webhook(sys.stdin.readline().strip())
    server.serve_forever()


if __name__ == "__main__":
    main()
