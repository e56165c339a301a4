"""Administration over HTTP: users, their grants, and the audit trail (admins only).

The same operations as ``geo-protect users …`` and ``geo-protect audit …``; each change
writes its audit row with the admin as the author.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from geo_protect.access import Grant, Role
from geo_protect.service.access import no_city, requires
from geo_protect.service.auth import NO_NUL, actor_of
from geo_protect.service.runtime import Runtime
from geo_protect.store import audit, users

__all__ = ["router"]

router = APIRouter(tags=["administration"])
_ADMIN = [requires("admin", city=no_city)]
#: Most audit rows one request returns (use ``after_id`` to page on).
MAX_AUDIT_ROWS = 10_000


class GrantIn(BaseModel):
    """A role in a city (``*``: every city)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    city: str = Field(min_length=1, max_length=64, pattern=NO_NUL)


class UserIn(BaseModel):
    """A user to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=64, pattern=NO_NUL)
    password: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)
    full_name: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    grants: list[GrantIn] = Field(default_factory=list, max_length=100)


class PasswordSet(BaseModel):
    """A new password set by an admin."""

    model_config = ConfigDict(extra="forbid")

    new: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/admin/users", dependencies=_ADMIN)
def list_users(request: Request) -> list[dict[str, Any]]:
    """Every user with their grants."""
    return users.list_users(_rt(request).engine)


@router.post("/admin/users", dependencies=_ADMIN, status_code=201, responses={409: {}})
def add_user(request: Request, body: Annotated[UserIn, Body()]) -> dict[str, Any]:
    """Create a user (with grants); their password must be at least 12 characters."""
    rt = _rt(request)
    grants = [Grant(g.role, g.city) for g in body.grants]
    users.add_user(
        rt.engine,
        body.name,
        body.password,
        actor=actor_of(request),
        cities=rt.cities(),
        full_name=body.full_name,
        grants=grants,
    )
    return {"name": body.name, "grants": [f"{g.role}@{g.city}" for g in grants]}


@router.post("/admin/users/{name}/grants", dependencies=_ADMIN, responses={404: {}})
def add_grant(request: Request, name: str, body: Annotated[GrantIn, Body()]) -> dict[str, Any]:
    """Give a user a role in a city."""
    rt = _rt(request)
    added = users.grant(
        rt.engine, name, Grant(body.role, body.city), actor=actor_of(request), cities=rt.cities()
    )
    return {"name": name, "grant": f"{body.role}@{body.city}", "added": added}


@router.delete("/admin/users/{name}/grants/{role}/{city}", dependencies=_ADMIN, responses={404: {}})
def drop_grant(request: Request, name: str, role: Role, city: str) -> dict[str, Any]:
    """Take a role in a city from a user."""
    gone = users.revoke(_rt(request).engine, name, Grant(role, city), actor=actor_of(request))
    return {"name": name, "grant": f"{role}@{city}", "revoked": gone}


@router.post("/admin/users/{name}/disable", dependencies=_ADMIN, responses={404: {}})
def disable(request: Request, name: str) -> dict[str, Any]:
    """Disable a user: their sessions and tokens stop working at once."""
    users.set_disabled(_rt(request).engine, name, True, actor=actor_of(request))
    return {"name": name, "disabled": True}


@router.post("/admin/users/{name}/enable", dependencies=_ADMIN, responses={404: {}})
def enable(request: Request, name: str) -> dict[str, Any]:
    """Enable a disabled user again."""
    users.set_disabled(_rt(request).engine, name, False, actor=actor_of(request))
    return {"name": name, "disabled": False}


@router.post("/admin/users/{name}/password", dependencies=_ADMIN, responses={404: {}})
def set_password(
    request: Request, name: str, body: Annotated[PasswordSet, Body()]
) -> dict[str, Any]:
    """Set a user's password (their sessions and tokens are revoked)."""
    users.change_password(
        _rt(request).engine, name, None, body.new, actor=actor_of(request), keep=None
    )
    return {"name": name, "password_changed": True}


@router.get("/audit", dependencies=_ADMIN)
def read_audit(
    request: Request,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    city: Annotated[str | None, Query(max_length=64)] = None,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_ROWS)] = 1000,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The audit trail, oldest first, filtered; as JSON or CSV."""
    rows = audit.read_audit(
        _rt(request).engine,
        since=since,
        until=until,
        actor=actor,
        action=action,
        city=city,
        after_id=after_id,
        limit=limit,
    )
    media = "text/csv" if format == "csv" else "application/json"
    return Response(audit.export_rows(rows, format), media_type=media)
