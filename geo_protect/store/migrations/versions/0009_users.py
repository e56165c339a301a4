"""Users, grants, sessions and tokens, login attempts, and row-level city scoping (issue 13).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

* ``app_user``: one row per account; the password as an argon2 hash, never in clear.
* ``user_grant``: a role in a city (``*``: every city) — what :mod:`geo_protect.access`
  turns into permissions.
* ``credential``: browser sessions and personal API tokens, each stored as the keyed
  digest of its secret (the secret itself is shown once and never kept), with expiry and
  revocation; sessions carry their CSRF token.
* ``login_attempt``: every login, for throttling per user and per address.
* Row-level security: a role ``geo_protect_scoped`` (no login) that the service takes
  with ``SET LOCAL ROLE`` inside each request's transaction, after putting the user's
  cities in the settings ``geo_protect.read_cities`` and ``geo_protect.live_cities``
  (comma-separated slugs, ``*`` for all). Policies on every table with a city show a row
  only when its city is in the matching list; live tables (sensors, readings, alerts,
  events) use the live list, everything else the read list. The audit trail is not
  scoped (every change appends to one chain, so a writer reads its head; only admin
  routes read it) but the role may only insert into it and read it. No setting, no
  rows: the scope fails closed. Background work (the MQTT consumer, the refresher)
  runs as the connecting role and is not scoped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from geo_protect.store.migrations import SCHEMA, enable_city_scope

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
#: Tables of live data: scoped by the cities where the user may see live feeds.
LIVE = ("sensor", "alert", "alert_pending", "live_event")
#: Layer tables and the other city tables: scoped by the cities the user may read.
READ_EXCEPT = frozenset({*LIVE, "audit", "user_grant"})


def _tables() -> None:
    op.create_table(
        "app_user",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("password_changed_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.CheckConstraint("name ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'", name="app_user_name_check"),
        schema=SCHEMA,
    )
    op.create_table(
        "user_grant",
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("granted_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("user_name", "role", "city", name="user_grant_pkey"),
        sa.ForeignKeyConstraint(
            ["user_name"], [f"{SCHEMA}.app_user.name"], ondelete="CASCADE", onupdate="CASCADE"
        ),
        sa.CheckConstraint(
            "role IN ('viewer','operator','planner','assessor','analyst','admin')",
            name="user_grant_role_check",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "credential",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False, unique=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("csrf", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_name"], [f"{SCHEMA}.app_user.name"], ondelete="CASCADE", onupdate="CASCADE"
        ),
        sa.CheckConstraint("kind IN ('session','token')", name="credential_kind_check"),
        schema=SCHEMA,
    )
    op.create_index("credential_user_idx", "credential", ["user_name"], schema=SCHEMA)
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("at", TZ, nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("login_attempt_user_idx", "login_attempt", ["user_name", "at"], schema=SCHEMA)
    op.create_index("login_attempt_addr_idx", "login_attempt", ["address", "at"], schema=SCHEMA)


def _scoping() -> None:
    bind = op.get_bind()
    tables = bind.execute(
        sa.text(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = :s "
            "AND column_name = 'city' ORDER BY table_name"
        ),
        {"s": SCHEMA},
    ).scalars()
    for table in tables:
        if table in READ_EXCEPT:
            continue
        enable_city_scope(table, "read")
    enable_city_scope("city", "read", column="slug")
    for table in LIVE:
        enable_city_scope(table, "live")
    # rows without a city of their own follow their parent's
    for table, parent, key in (
        ("reading", "sensor", "sensor_id"),
        ("alert_history", "alert", "alert_id"),
    ):
        op.execute(f"ALTER TABLE {SCHEMA}.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_scope ON {SCHEMA}.{table} TO geo_protect_scoped "
            f"USING (EXISTS (SELECT 1 FROM {SCHEMA}.{parent} p WHERE p.{key} = {table}.{key})) "
            "WITH CHECK (true)"
        )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {SCHEMA}.audit FROM geo_protect_scoped")
    for table in ("app_user", "user_grant", "credential", "login_attempt"):
        op.execute(f"REVOKE ALL ON {SCHEMA}.{table} FROM geo_protect_scoped")


def upgrade() -> None:
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE geo_protect_scoped NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        GRANT geo_protect_scoped TO CURRENT_USER;
        GRANT USAGE ON SCHEMA {SCHEMA} TO geo_protect_scoped;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO geo_protect_scoped;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO geo_protect_scoped;
        ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA}
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO geo_protect_scoped;
        ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA}
            GRANT USAGE, SELECT ON SEQUENCES TO geo_protect_scoped;
        CREATE FUNCTION {SCHEMA}.in_scope(city text, kind text) RETURNS boolean
        LANGUAGE sql STABLE AS $f$
            SELECT coalesce(current_setting('geo_protect.' || kind || '_cities', true), '') = '*'
                OR city = ANY (string_to_array(
                    nullif(current_setting('geo_protect.' || kind || '_cities', true), ''), ','))
        $f$;
        """
    )
    _tables()
    _scoping()


def downgrade() -> None:
    bind = op.get_bind()
    policies = bind.execute(
        sa.text("SELECT tablename, policyname FROM pg_policies WHERE schemaname = :s"),
        {"s": SCHEMA},
    ).all()
    for table, policy in policies:
        op.execute(f"DROP POLICY {policy} ON {SCHEMA}.{table}")
        op.execute(f"ALTER TABLE {SCHEMA}.{table} DISABLE ROW LEVEL SECURITY")
    for table in ("login_attempt", "credential", "user_grant", "app_user"):
        op.drop_table(table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.in_scope(text, text)")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM geo_protect_scoped")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM geo_protect_scoped")
    op.execute(f"REVOKE USAGE ON SCHEMA {SCHEMA} FROM geo_protect_scoped")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} "
        "REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM geo_protect_scoped"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} "
        "REVOKE USAGE, SELECT ON SEQUENCES FROM geo_protect_scoped"
    )
