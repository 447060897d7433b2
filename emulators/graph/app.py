"""The emulator's ASGI app: auth, fault injection, request log, $batch and the control surface.

Plain ASGI rather than a framework: every request of a benchmark crosses this code, and Graph's
routing (ids or UPNs in paths, `$ref` segments, `$batch` re-dispatch) is simpler to own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from emulators.graph.control import Faults, RequestLog
from emulators.graph.errors import GraphError, bad_request, error_body
from emulators.graph.pim_groups import PimGroups
from emulators.graph.resources import GraphResources
from emulators.graph.seed import seed
from emulators.graph.store import Directory
from emulators.graph.tokens import DEFAULT_TENANT_ID, OAuthError, TokenIssuer
from emulators.graph.wire import Call, Reply
from emulators.graph.workloads import BetaReports

API_PREFIX = "/v1.0"
# Only reports/servicePrincipalSignInActivities: v1.0 has no sign-in activity for workloads.
BETA_PREFIX = "/beta"
CONTROL_PREFIX = "/_emulator"
MAX_BATCH = 20
# Entra's token issuer endpoints, below the tenant: /{tenant}/...
ISSUER_ROUTE = re.compile(
    r"^/([^/]+)/(v2\.0/\.well-known/openid-configuration|discovery/v2\.0/keys|oauth2/v2\.0/token)/?$",
    re.IGNORECASE,
)
TOKEN_ENDPOINT = "oauth2/v2.0/token"
OPENID_CONFIGURATION = "v2.0/.well-known/openid-configuration"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Scope = dict[str, Any]


def _query(raw: str) -> dict[str, str]:
    # `$top` and `top` mean the same to Graph; keys are matched case-insensitively.
    return {k.lstrip("$").lower(): v for k, v in parse_qsl(raw, keep_blank_values=True)}


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("Unable to read JSON request payload.", "BadRequest") from None


class GraphEmulator:
    def __init__(self, db_path: str | None, token: str, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        self.directory = Directory(db_path)
        self.resources = GraphResources(self.directory)
        self.pim_groups = PimGroups(self.directory)
        self.beta = BetaReports(self.directory)
        self.tokens = TokenIssuer(self.directory, tenant_id)
        self.faults = Faults()
        self.log = RequestLog()
        self._token = token.encode()

    # ---- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        received = time.time()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw_body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"].upper()
        path = scope["path"]
        raw_query = scope["query_string"].decode("latin-1")
        client_request_id = headers.get("client-request-id")
        # URLs the emulator hands out name the host the client used, as a real service's would.
        root = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"

        prefix = next(
            (p for p in (API_PREFIX, BETA_PREFIX) if path == p or path.startswith(p + "/")), None
        )
        if prefix is not None:
            reply = self._graph(
                method, prefix, path[len(prefix) :], raw_query, raw_body, headers, root + prefix
            )
            self.log.record(
                {
                    "time": received,
                    "method": method,
                    "path": path + (f"?{raw_query}" if raw_query else ""),
                    "status": reply.status,
                    "retry_after": int(reply.headers["Retry-After"])
                    if "Retry-After" in reply.headers
                    else None,
                    "body_sha256": hashlib.sha256(raw_body).hexdigest() if raw_body else None,
                    "client_request_id": client_request_id,
                    # Which Temporal activity attempt sent it (Tenure's clients tag their calls).
                    "activity": headers.get("x-tenure-activity"),
                }
            )
        elif path.startswith(CONTROL_PREFIX + "/"):
            reply = self._guarded(headers, lambda: self._control(method, path, raw_query, raw_body))
        elif (issuer_route := ISSUER_ROUTE.match(path)) is not None:
            tenant, endpoint = issuer_route.groups()
            reply = self._issuer(method, tenant, endpoint.lower(), headers, raw_body, root)
        else:
            reply = Reply(404, error_body("NotFound", f"No route for '{path}'.", None))

        # Graph errors carry the client's request id; OAuth errors ({"error": "..."}) have no room.
        if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
            reply.body["error"]["innerError"]["client-request-id"] = (
                client_request_id or reply.body["error"]["innerError"]["client-request-id"]
            )
        await self._send(send, reply, client_request_id)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.directory.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _send(send: Any, reply: Reply, client_request_id: str | None) -> None:
        out = [
            (b"request-id", str(uuid.uuid4()).encode()),
            (b"client-request-id", (client_request_id or "").encode("latin-1")),
        ]
        out += [(k.lower().encode(), v.encode("latin-1")) for k, v in reply.headers.items()]
        payload = b""
        if reply.body is not None:
            payload = json.dumps(reply.body, separators=(",", ":")).encode()
            out.append((b"content-type", b"application/json"))
        out.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    # ---- Graph ---------------------------------------------------------------------------------

    def _token_ok(self, authorization: str) -> bool:
        scheme, _, presented = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), self._token
        )

    def _guarded(self, headers: dict[str, str], action: Any) -> Reply:
        try:
            auth = headers.get("authorization", "")
            if not auth:
                raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
            if not self._token_ok(auth):
                raise GraphError(
                    401, "InvalidAuthenticationToken", "Access token validation failure."
                )
            return action()
        except GraphError as err:
            headers_out = dict(err.headers)
            if err.status == 401:
                headers_out["WWW-Authenticate"] = 'Bearer realm=""'
            return Reply(err.status, error_body(err.code, err.message, None), headers_out)

    def _graph(
        self,
        method: str,
        prefix: str,
        path: str,
        raw_query: str,
        raw_body: bytes,
        headers: dict[str, str],
        service_root: str,
    ) -> Reply:
        def handle() -> Reply:
            # Injected faults answer before any state is read or written.
            self.faults.check(method, prefix + path + (f"?{raw_query}" if raw_query else ""))
            body = _json(raw_body)
            if prefix == BETA_PREFIX:
                return self.beta.dispatch(Call(method, path, _query(raw_query), body, service_root))
            if path.rstrip("/").lower() == "/$batch":
                if method != "POST":
                    raise GraphError(405, "BadRequest", "Only POST is allowed on $batch.")
                return self._batch(body, service_root)
            call = Call(method, path, _query(raw_query), body, service_root)
            return self._dispatch(call)

        return self._guarded(headers, handle)

    def _dispatch(self, call: Call) -> Reply:
        """A v1.0 call: PIM for groups first, the rest of Graph otherwise.

        Every call first brings PIM-for-groups memberships in line with the clock (`sync`), so any
        read (/groups/{id}/members, /owners, memberOf...) sees an assignment's start and expiry.
        """
        self.pim_groups.sync()
        reply = self.pim_groups.dispatch(call)
        return reply if reply is not None else self.resources.dispatch(call)

    def _batch(self, body: Any, service_root: str) -> Reply:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise bad_request(
                f"The number of requests in a batch must not exceed {MAX_BATCH}.", "BadRequest"
            )
        seen: set[str] = set()
        for item in requests:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) and item[k] for k in ("id", "method", "url")
            ):
                raise bad_request("Invalid batch payload format.", "BadRequest")
            # Graph wants URLs relative to the service root; an absolute one fails the batch.
            if urlsplit(item["url"]).scheme or item["url"].startswith("//"):
                raise bad_request("Invalid batch payload format.", "BadRequest")
            if item["id"] in seen:
                raise bad_request(f"Duplicate request id '{item['id']}' in batch.", "BadRequest")
            seen.add(item["id"])

        statuses: dict[str, int] = {}
        responses = []
        for item in requests:
            depends_on = item.get("dependsOn") or item.get("depends_on") or []
            if any(statuses.get(dep, 424) >= 400 for dep in depends_on):
                reply = Reply(424, error_body("FailedDependency", "A dependency failed.", None))
            else:
                reply = self._sub_request(item, service_root)
            statuses[item["id"]] = reply.status
            headers = dict(reply.headers)
            if reply.body is not None:
                headers["Content-Type"] = "application/json"
            responses.append(
                {"id": item["id"], "status": reply.status, "headers": headers, "body": reply.body}
            )
        return Reply(200, {"responses": responses})

    def _sub_request(self, item: dict[str, Any], service_root: str) -> Reply:
        method = item["method"].upper()
        url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
        raw_path, _, raw_query = url.partition("?")
        path = unquote(raw_path)
        sub_headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        try:
            self.faults.check(method, API_PREFIX + path + (f"?{raw_query}" if raw_query else ""))
            body = item.get("body")
            if isinstance(body, str):
                # Non-JSON bodies travel base64-encoded inside a batch.
                try:
                    body = _json(base64.b64decode(body))
                except (binascii.Error, GraphError):
                    raise bad_request("Invalid batch request body.", "BadRequest") from None
            call = Call(method, path, _query(raw_query), body, service_root)
            return self._dispatch(call)
        except GraphError as err:
            crid = sub_headers.get("client-request-id")
            return Reply(err.status, error_body(err.code, err.message, crid), dict(err.headers))

    # ---- token issuer --------------------------------------------------------------------------

    def _issuer(
        self,
        method: str,
        tenant: str,
        endpoint: str,
        headers: dict[str, str],
        raw_body: bytes,
        root: str,
    ) -> Reply:
        """Discovery and keys are public, as Entra's are; the token endpoint needs the control token."""
        try:
            if tenant.lower() != self.tokens.tenant_id.lower():
                raise OAuthError(
                    400,
                    "invalid_tenant",
                    f"Tenant '{tenant}' not found: this emulator is tenant {self.tokens.tenant_id}.",
                )
            if endpoint == TOKEN_ENDPOINT:
                if method != "POST":
                    raise OAuthError(405, "invalid_request", "The token endpoint takes POST only.")
                if not self._token_ok(headers.get("authorization", "")):
                    raise OAuthError(
                        401,
                        "invalid_client",
                        "The emulator's token endpoint mints tokens for anybody: authenticate "
                        "with its control token ('Authorization: Bearer <emulator token>').",
                    )
                content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
                if content_type != FORM_CONTENT_TYPE:
                    raise OAuthError(
                        400, "invalid_request", f"The request body must be {FORM_CONTENT_TYPE}."
                    )
                form = dict(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
                answer = self.tokens.token_response(form, root)
                return Reply(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})
            if method != "GET":
                raise OAuthError(405, "invalid_request", "Only GET is allowed here.")
            if endpoint == OPENID_CONFIGURATION:
                return Reply(200, self.tokens.openid_configuration(root))
            return Reply(200, self.tokens.jwks())
        except OAuthError as err:
            out = {"Cache-Control": "no-store"}
            if err.status == 401:
                out["WWW-Authenticate"] = 'Bearer realm="tenure-graph-emulator"'
            return Reply(err.status, err.body(), out)

    # ---- control surface -----------------------------------------------------------------------

    def _control(self, method: str, path: str, raw_query: str, raw_body: bytes) -> Reply:
        route = path[len(CONTROL_PREFIX) :].rstrip("/")
        params = _query(raw_query)
        since = int(params.get("since", "0") or 0)
        if route == "/health" and method == "GET":
            return Reply(
                200,
                {
                    "status": "ok",
                    "users": len(self.directory.users),
                    "groups": len(self.directory.groups),
                    "servicePrincipals": len(self.directory.service_principals),
                },
            )
        if route == "/faults":
            if method == "POST":
                return Reply(201, {"id": self.faults.add(_json(raw_body)).id})
            if method == "GET":
                return Reply(200, {"value": self.faults.list()})
            if method == "DELETE":
                self.faults.clear()
                return Reply(204)
        if route.startswith("/faults/") and method == "DELETE":
            fault_id = route.rsplit("/", 1)[-1]
            found = fault_id.isdigit() and self.faults.remove(int(fault_id))
            if not found:
                return Reply(404, error_body("NotFound", "No such fault.", None))
            return Reply(204)
        if route == "/requests":
            if method == "GET":
                return Reply(200, {"value": self.log.since(since)})
            if method == "DELETE":
                self.log.clear()
                return Reply(204)
        if route == "/outbox":
            if method == "GET":
                return Reply(200, {"value": list(self.directory.outbox(since))})
            if method == "DELETE":
                self.directory.clear_outbox()
                return Reply(204)
        if route == "/roles" and method == "DELETE":
            # Every directory-role assignment, eligibility and PIM request; definitions stay. PIM
            # for groups too, with the memberships and ownerships its assignments gave.
            self.directory.clear_roles()
            self.pim_groups.reset()
            return Reply(204)
        if route == "/pim-groups" and method == "DELETE":
            # PIM for groups only: its schedules, requests and the memberships/ownerships it gave.
            self.pim_groups.reset()
            return Reply(204)
        if route == "/seed" and method == "POST":
            return Reply(200, seed(self.resources, _json(raw_body) or {}))
        if route.startswith("/sign-in/"):
            object_id = route[len("/sign-in/") :]
            if method == "PUT":
                activity = _json(raw_body)
                return Reply(200, self.resources.workloads.set_sign_in(object_id, activity))
            if method == "GET":
                return Reply(200, self.resources.workloads.describe_sign_in(object_id))
        if route == "/app-roles" and method == "GET":
            return Reply(200, {"value": self.tokens.role_assignments()})
        if route.startswith("/app-roles/") and method == "PUT":
            employee_id = route[len("/app-roles/") :]
            return Reply(200, self.tokens.assign_roles(employee_id, _json(raw_body)))
        if route == "/signing-keys" and method == "POST":
            return Reply(201, {"kid": self.tokens.rotate_key()})
        return Reply(404, error_body("NotFound", f"No control route '{method} {path}'.", None))


def create_app(
    db_path: str | None, token: str, tenant_id: str = DEFAULT_TENANT_ID
) -> GraphEmulator:
    """The emulator as an ASGI app; `db_path=None` keeps the directory in memory only."""
    return GraphEmulator(db_path, token, tenant_id)
