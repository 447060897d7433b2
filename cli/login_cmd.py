"""`tenure login --as E1001 | --status` and `tenure logout`: the CLI's token, from the local stack.

Locally the Graph emulator plays Entra's token issuer: it mints a token for a person of its
directory when asked with the stack's emulator token (which only the stack's owner can read).
The API then verifies that token as it would one from Entra.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt

from cli.api_session import (
    Session,
    load_session,
    local_time,
    remove_session,
    save_session,
)
from emulators.graph.tokens import DEFAULT_TENANT_ID, emulated_user_token_form
from stack.config import API_TOKEN_AUDIENCE
from stack.credentials import read_credentials
from stack.stack_file import read_stack_file, tenure_home
from stack.status import pid_alive

NO_STACK = "no local stack: start it with `make run`"


class LoginError(Exception):
    """Logging in failed; the message is the one line to show."""


def register(groups: argparse._SubParsersAction) -> None:
    login = groups.add_parser(
        "login",
        help="get a token for the CLI from the local stack, as one of its people",
        description="Ask the local stack's token issuer (the Graph emulator) for a token for a "
        "person of its directory, and keep it in TENURE_HOME/cli-token.json for other commands.",
    )
    mode = login.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--as", dest="employee_id", metavar="EMPLOYEE_ID", help="whom to log in as, e.g. E1001"
    )
    mode.add_argument("--status", action="store_true", help="show who is logged in, until when")
    login.add_argument(
        "--mfa",
        action="store_true",
        help="sign in with multi-factor authentication (the token's amr names mfa), as "
        "privileged roles that need MFA require",
    )
    login.set_defaults(handler=login_command)

    logout = groups.add_parser("logout", help="forget the CLI's token")
    logout.set_defaults(handler=logout_command)


def login_command(args: argparse.Namespace) -> int:
    home = tenure_home()
    if args.status:
        return _status(home)
    try:
        session = log_in(home, args.employee_id, mfa=args.mfa)
    except LoginError as err:
        print(f"tenure login: {err}", file=sys.stderr)
        return 1
    roles = f"; roles: {', '.join(session.roles)}" if session.roles else ""
    how = " with MFA" if args.mfa else ""
    print(f"Logged in as {session.who()}{how} until {local_time(session.expires_at)}{roles}.")
    return 0


def logout_command(args: argparse.Namespace) -> int:
    session = remove_session(tenure_home())
    print(f"Logged out {session.employee_id}." if session else "Nobody was logged in.")
    return 0


def _status(home: Path) -> int:
    session = load_session(home)
    if session is None:
        print("Nobody is logged in: run `tenure login --as <employee id>`.")
        return 1
    if session.expired():
        print(
            f"The login as {session.who()} expired at {local_time(session.expires_at)}: "
            f"run `tenure login --as {session.employee_id}` again."
        )
        return 1
    roles = ", ".join(session.roles) or "none"
    print(
        f"Logged in as {session.who()} until {local_time(session.expires_at)} "
        f"(API {session.api_url}; roles: {roles})."
    )
    return 0


def log_in(
    home: Path, employee_id: str, http: httpx.Client | None = None, *, mfa: bool = False
) -> Session:
    """Get a token for `employee_id` from the local stack and store it; LoginError says why not."""
    employee_id = employee_id.strip()
    if not employee_id:
        raise LoginError("name the person: `tenure login --as E1001`")
    stack = read_stack_file(home)
    if stack is None or not pid_alive(stack.get("supervisor_pid")):
        raise LoginError(NO_STACK)
    try:
        creds = read_credentials(home)
    except ValueError as err:
        raise LoginError(str(err)) from None
    if creds is None:
        raise LoginError(f"{NO_STACK} (no credentials in {home})")
    endpoint = _token_endpoint(stack)
    audience = (stack.get("api") or {}).get("token_audience") or API_TOKEN_AUDIENCE
    form = emulated_user_token_form(employee_id, audience, mfa=mfa)
    headers = {"Authorization": f"Bearer {creds.graph_token}"}
    client = http or httpx.Client(timeout=15.0)
    try:
        response = client.post(endpoint, data=form, headers=headers)
    except httpx.HTTPError as err:
        raise LoginError(
            f"the local token issuer at {endpoint} does not answer ({err.__class__.__name__}): "
            f"{NO_STACK}"
        ) from None
    finally:
        if http is None:
            client.close()
    answer = _json(response)
    if response.status_code != 200:
        raise LoginError(_refusal(employee_id, response.status_code, answer))
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise LoginError(f"the token issuer at {endpoint} answered without an access_token")
    session = _session(employee_id, token, answer, stack)
    save_session(session, home)
    return session


def _token_endpoint(stack: dict[str, Any]) -> str:
    graph = stack.get("graph") or {}
    if graph.get("token_endpoint"):
        return str(graph["token_endpoint"])
    # A stack.json from before the token issuer: derive it from the Graph URL (".../v1.0").
    root = str(graph.get("url", "")).rstrip("/").removesuffix("/v1.0")
    if not root:
        raise LoginError(f"{NO_STACK} (stack.json names no Graph emulator)")
    return f"{root}/{graph.get('tenant_id') or DEFAULT_TENANT_ID}/oauth2/v2.0/token"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(employee_id: str, status: int, answer: dict[str, Any]) -> str:
    error, description = answer.get("error"), answer.get("error_description")
    if error == "invalid_client":
        return (
            "the local token issuer refused the stack's emulator token: credentials.json does "
            "not belong to the running stack (restart it with `make run`)"
        )
    if error == "invalid_grant" and description:
        return f"cannot log in as {employee_id}: {description}"
    return f"cannot log in as {employee_id}: the token issuer answered {status} " + (
        f"{error}: {description}" if error else "(no OAuth error)"
    )


def _session(
    employee_id: str, token: str, answer: dict[str, Any], stack: dict[str, Any]
) -> Session:
    # Claims are read for display and expiry only; the API is what verifies the token.
    claims = jwt.decode(token, options={"verify_signature": False})
    exp = claims.get("exp")
    if isinstance(exp, int | float):
        expires_at = datetime.fromtimestamp(exp, UTC)
    else:
        expires_at = datetime.now(UTC) + timedelta(seconds=int(answer.get("expires_in") or 0))
    roles = claims.get("roles")
    return Session(
        api_url=str((stack.get("api") or {}).get("url", "")),
        token=token,
        employee_id=str(claims.get("employeeid") or employee_id),
        expires_at=expires_at,
        user_principal_name=claims.get("preferred_username"),
        display_name=claims.get("name"),
        roles=tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else (),
    )
