"""A small HTTP fixture serving the part of the Schema Registry's API that
EWS and the tests use: GET /schemas/ids/{id} (what decoding asks), POST
/subjects/{subject}/versions (the alert schema registered at start: the
same schema again gets its id again, a new one the next id) and GET
/subjects/{subject}/versions/latest (what a stock client asks). It can be
stopped and started again on the same port to play an outage."""

import http.server
import json
import threading

import ewsenv


class Registry:
    def __init__(self, schemas):
        """schemas: {id: schema JSON text}"""
        self.schemas = dict(schemas)
        self.subjects = {}  # subject -> [id, ...] in registration order
        self.refuse = set()  # subjects whose registrations get a 409
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
                if (len(parts) == 4 and parts[0] == "subjects" and
                        parts[2:] == ["versions", "latest"]):
                    ids = registry.subjects.get(parts[1])
                    if not ids:
                        return self.answer(404, {"error_code": 40401,
                                                 "message": "no subject"})
                    return self.answer(200, {
                        "subject": parts[1], "version": len(ids),
                        "id": ids[-1], "schema": registry.schemas[ids[-1]]})
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

            def do_POST(self):
                registry.requests.append("POST " + self.path)
                parts = self.path.strip("/").split("/")
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if (len(parts) != 3 or parts[0] != "subjects" or
                        parts[2] != "versions"):
                    return self.answer(404, {"error_code": 404,
                                             "message": "not found"})
                if parts[1] in registry.refuse:
                    return self.answer(409, {
                        "error_code": 409,
                        "message": "Schema being registered is incompatible "
                                   "with an earlier schema"})
                text = json.loads(body)["schema"]
                sid = next((i for i, t in registry.schemas.items()
                            if t == text),
                           max(registry.schemas, default=0) + 1)
                registry.schemas[sid] = text
                ids = registry.subjects.setdefault(parts[1], [])
                if sid not in ids:
                    ids.append(sid)
                self.answer(200, {"id": sid})

            def answer(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type",
                                 "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
