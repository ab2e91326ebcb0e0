"""A small HTTP fixture serving the Schema Registry's read API
(GET /schemas/ids/{id}), which is all EWS asks of a registry. It can be
stopped and started again on the same port to play an outage."""

import http.server
import json
import threading

import ewsenv


class Registry:
    def __init__(self, schemas):
        """schemas: {id: schema JSON text}"""
        self.schemas = dict(schemas)
        self.requests = []
        self.port = ewsenv.free_port()
        self.server = None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                registry.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                sid = (int(parts[2]) if len(parts) == 3 and parts[:2] ==
                       ["schemas", "ids"] and parts[2].isdigit() else None)
                if sid in registry.schemas:
                    body = json.dumps({"schema": registry.schemas[sid]})
                    self.send_response(200)
                else:
                    body = json.dumps({"error_code": 40403,
                                       "message": "Schema not found"})
                    self.send_response(404)
                self.send_header("Content-Type",
                                 "application/vnd.schemaregistry.v1+json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                      Handler)
        self.server.allow_reuse_address = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """Refuses connections from now on, as a registry that is down."""
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self):
        self.stop()
