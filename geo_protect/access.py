"""Who may do what, where: roles, the permissions they carry, and a user's scope.

A user holds *grants*: a role in one city, or in every city (``"*"``). A role carries a
fixed set of permissions (:data:`ROLE_PERMISSIONS`); the roles are not a ladder — an
operator, a planner and an assessor each add one kind of change to what a viewer reads,
and an analyst reads the scores of every city but no live feed. :class:`Scope` answers
"may this user do P in city C?" and lists the cities a permission reaches, which is what
the store filters rows by.

Every route of the service declares one permission (see ``geo_protect.service.access``);
``public`` routes need no login.

Examples
--------
>>> scope = Scope.of("ana", [Grant("operator", "brasov"), Grant("analyst", "*")])
>>> scope.allows("acknowledge", "brasov"), scope.allows("acknowledge", "vilnius")
(True, False)
>>> scope.allows("read", "vilnius"), scope.allows("live", "vilnius")
(True, False)
>>> sorted(scope.cities("live"))
['brasov']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "ALL_CITIES",
    "PERMISSIONS",
    "ROLES",
    "ROLE_PERMISSIONS",
    "Grant",
    "Permission",
    "Role",
    "Scope",
]

#: The city of a grant that reaches every city.
ALL_CITIES = "*"

Role = Literal["viewer", "operator", "planner", "assessor", "analyst", "admin"]
Permission = Literal[
    "public",  # no login
    "account",  # any logged-in user: their own account, tokens and password
    "read",  # maps, spaces, entries, scores, standard read APIs of a city
    "compare",  # the cross-city comparison and rankings
    "live",  # live state, readings, alerts, sensors and their positions, the control page
    "ingest",  # post readings, register sensors
    "acknowledge",  # acknowledge and resolve alerts
    "plan",  # create, change and delete scenarios
    "assess",  # edit assessments, import assessment files
    "admin",  # users, grants, the audit trail
]
ROLES: tuple[Role, ...] = get_args(Role)
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)

#: What each role may do, in the cities it is granted [I].
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "live", "ingest", "acknowledge"}),
    "planner": frozenset({"read", "plan"}),
    "assessor": frozenset({"read", "assess"}),
    "analyst": frozenset({"read", "compare"}),
    "admin": frozenset(PERMISSIONS) - {"public", "account"},
}


@dataclass(frozen=True, slots=True)
class Grant:
    """A role in a city (``city="*"``: in every city)."""

    role: Role
    city: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if not self.city:
            raise ValueError("a grant needs a city (or '*' for every city)")


@dataclass(frozen=True, slots=True)
class Scope:
    """What one user may do: their permissions per city, every city under ``"*"``."""

    user: str
    by_city: dict[str, frozenset[Permission]] = field(default_factory=dict)

    @classmethod
    def of(cls, user: str, grants: Iterable[Grant]) -> Scope:
        """The scope of ``user`` from their grants.

        Parameters
        ----------
        user : str
            The user's name.
        grants : Iterable[Grant]
            Their grants.

        Returns
        -------
        Scope

        Examples
        --------
        >>> Scope.of("bo", [Grant("viewer", "larissa")]).allows("read", "larissa")
        True
        """
        by_city: dict[str, set[Permission]] = {}
        for grant in grants:
            by_city.setdefault(grant.city, set()).update(ROLE_PERMISSIONS[grant.role])
        return cls(user, {c: frozenset(p) for c, p in by_city.items()})

    def allows(self, permission: Permission, city: str | None = None) -> bool:
        """Whether the user may do ``permission`` in ``city`` (None: in some city).

        Parameters
        ----------
        permission : Permission
            What is asked.
        city : str or None
            Where; None asks whether any grant carries the permission.

        Returns
        -------
        bool

        Examples
        --------
        >>> s = Scope.of("cy", [Grant("planner", "malaga")])
        >>> s.allows("plan", "malaga"), s.allows("plan"), s.allows("plan", "vilnius")
        (True, True, False)
        """
        if permission in ("public", "account"):
            return True
        if city is None:
            return any(permission in perms for perms in self.by_city.values())
        return permission in self.by_city.get(city, frozenset()) or permission in (
            self.by_city.get(ALL_CITIES, frozenset())
        )

    def cities(self, permission: Permission) -> frozenset[str]:
        """The cities where the user may do ``permission``; ``{"*"}`` if every city.

        Parameters
        ----------
        permission : Permission
            What is asked.

        Returns
        -------
        frozenset[str]

        Examples
        --------
        >>> Scope.of("di", [Grant("admin", "*")]).cities("live")
        frozenset({'*'})
        """
        if permission in self.by_city.get(ALL_CITIES, frozenset()):
            return frozenset({ALL_CITIES})
        return frozenset(c for c, perms in self.by_city.items() if permission in perms)
