"""Logging in and out, one's own account and personal API tokens.

``POST /auth/login`` checks the password (throttled per user and per address), opens a
session and answers with its token, expiry and CSRF token; the pages keep the session
in an ``HttpOnly`` ``SameSite=Strict`` cookie (``Secure`` in production), scripts and
GIS clients send a token as ``Authorization: Bearer …``. Personal tokens
(``POST /auth/tokens``) are what QGIS and GDAL use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from geo_protect.access import PERMISSIONS
from geo_protect.errors import ForbiddenError, ThrottledError, ValidationError
from geo_protect.service.access import COOKIE, credential_of, forget, requires
from geo_protect.service.runtime import Runtime
from geo_protect.store import users
from geo_protect.store.audit import Actor
from geo_protect.store.users import Principal

__all__ = ["NO_NUL", "actor_of", "router"]

router = APIRouter(tags=["accounts"])
_TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape())


#: Text PostgreSQL can store: anything but NUL.
NO_NUL = r"^[^\x00]*$"


class Login(BaseModel):
    """A user name and password."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)


class PasswordChange(BaseModel):
    """The current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)
    new: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)


class TokenRequest(BaseModel):
    """A personal API token to issue: a label and a lifetime."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    days: int | None = Field(default=None, gt=0, le=366)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _me(request: Request) -> Principal:
    principal: Principal | None = request.scope.get("principal")
    if principal is None:  # the route's requirement lets no anonymous request through
        raise ForbiddenError("no user")
    return principal


def address_of(request: Request) -> str | None:
    """The client's address as the server sees it."""
    return request.client.host if request.client else None


def actor_of(request: Request) -> Actor:
    """The logged-in user of ``request`` as the author of a change."""
    return Actor(_me(request).user, address_of(request), "service")


def _session_cookie(response: Response, rt: Runtime, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        max_age=rt.settings.session_lifetime_s,
        httponly=True,
        samesite="strict",
        secure=rt.settings.environment == "production",
        path="/",
    )


def _open_session(request: Request, user: str) -> JSONResponse:
    rt = _rt(request)
    secret, cred = users.issue_credential(
        rt.engine,
        user,
        "session",
        key=rt.secret,
        lifetime_s=rt.settings.session_lifetime_s,
        actor=Actor(user, address_of(request), "service"),
    )
    body = {
        "user": user,
        "access_token": secret,
        "token_type": "bearer",
        "expires_at": cred.expires_at.isoformat() if cred.expires_at else None,
        "csrf_token": cred.csrf,
    }
    response = JSONResponse(body)
    _session_cookie(response, rt, secret)
    return response


@router.post("/auth/login", dependencies=[requires("public")], responses={401: {}, 429: {}})
def login(request: Request, body: Annotated[Login, Body()]) -> Response:
    """Check a password; open a session (cookie and bearer token)."""
    rt = _rt(request)
    try:
        users.authenticate(
            rt.engine, body.user, body.password, address=address_of(request), limits=rt.logins
        )
    except ThrottledError as exc:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    return _open_session(request, body.user)


@router.post("/auth/logout", dependencies=[requires("account")])
def logout(request: Request) -> Response:
    """End the session (or withdraw the token) the request came with."""
    rt, me = _rt(request), _me(request)
    users.revoke_credential(rt.engine, me.user, me.credential_id, actor=actor_of(request))
    secret, _ = credential_of(request)
    if secret:
        forget(secret)
    response = JSONResponse({"user": me.user, "logged_out": True})
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/auth/refresh", dependencies=[requires("account")])
def refresh(request: Request) -> Response:
    """Swap a valid session for a new one (the old one is revoked)."""
    rt, me = _rt(request), _me(request)
    if me.kind != "session":
        raise ValidationError("credential: only sessions are refreshed; issue a new API token")
    response = _open_session(request, me.user)
    users.revoke_credential(rt.engine, me.user, me.credential_id, actor=actor_of(request))
    secret, _ = credential_of(request)
    if secret:
        forget(secret)
    return response


@router.get("/auth/me", dependencies=[requires("account")])
def me(request: Request) -> dict[str, Any]:
    """Who the request is from, their grants and what they may do where."""
    principal = _me(request)
    scope = principal.scope
    return {
        "user": principal.user,
        "credential": principal.kind,
        "expires_at": principal.expires_at,
        "csrf_token": principal.csrf,
        "permissions": {
            city: sorted(p for p in PERMISSIONS if p in perms)
            for city, perms in sorted(scope.by_city.items())
        },
    }


@router.post("/auth/password", dependencies=[requires("account")], responses={401: {}})
def password(request: Request, body: Annotated[PasswordChange, Body()]) -> dict[str, Any]:
    """Change one's own password; one's other sessions and tokens are revoked."""
    rt, principal = _rt(request), _me(request)
    users.change_password(
        rt.engine,
        principal.user,
        body.current,
        body.new,
        actor=actor_of(request),
        keep=principal.credential_id,
    )
    return {"user": principal.user, "password_changed": True}


def _credential_json(cred: users.Credential) -> dict[str, Any]:
    return {
        "id": cred.id,
        "kind": cred.kind,
        "label": cred.label,
        "created_at": cred.created_at,
        "expires_at": cred.expires_at,
        "revoked_at": cred.revoked_at,
    }


@router.get("/auth/tokens", dependencies=[requires("account")])
def tokens(request: Request) -> list[dict[str, Any]]:
    """One's API tokens (never their secrets)."""
    creds = users.list_credentials(_rt(request).engine, _me(request).user)
    return [_credential_json(c) for c in creds if c.kind == "token"]


@router.post("/auth/tokens", dependencies=[requires("account")], status_code=201)
def new_token(request: Request, body: Annotated[TokenRequest, Body()]) -> dict[str, Any]:
    """Issue a personal API token (shown this once) for GDAL, QGIS or a script."""
    rt = _rt(request)
    days = body.days or rt.settings.token_lifetime_days
    secret, cred = users.issue_credential(
        rt.engine,
        _me(request).user,
        "token",
        key=rt.secret,
        lifetime_s=days * 86400.0,
        label=body.label,
        actor=actor_of(request),
    )
    return {**_credential_json(cred), "token": secret}


@router.delete("/auth/tokens/{token_id}", dependencies=[requires("account")], status_code=204)
def drop_token(request: Request, token_id: int) -> Response:
    """Withdraw one of one's tokens."""
    users.revoke_credential(
        _rt(request).engine, _me(request).user, token_id, actor=actor_of(request)
    )
    return Response(status_code=204)


@router.get("/login", dependencies=[requires("public")], response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    """The login form of the pages."""
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never an open redirect
    html = await run_in_threadpool(_ENV.get_template("login.html").render, next=target)
    return HTMLResponse(html)
