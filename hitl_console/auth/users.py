"""Users: create, authenticate, list, update. Passwords are werkzeug hashes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from scrapy_hitl.state.models import USER_ROLES, User, iso, utcnow

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# Checked against when the email is unknown, so a wrong email costs as long as a wrong
# password and response times do not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not a real password")


class UserError(ValueError):
    """Invalid user data (answered 422) or a duplicate email (answered 409)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def user_to_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "role": user.role, "active": user.active,
            "created_at": iso(user.created_at), "last_login_at": iso(user.last_login_at)}


def _check(email: str | None = None, password: str | None = None, role: str | None = None) -> None:
    if email is not None and not _EMAIL.match(email):
        raise UserError(f"{email!r} is not an email address")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if role is not None and role not in USER_ROLES:
        raise UserError(f"role must be one of {', '.join(USER_ROLES)}; got {role!r}")


def create_user(db: Database, email: str, password: str, role: str = "reviewer") -> dict[str, Any]:
    email = email.strip().lower()
    _check(email, password, role)
    try:
        with db.session() as s:
            user = User(email=email, password_hash=generate_password_hash(password), role=role,
                        active=True)
            s.add(user)
            s.flush()
            return user_to_dict(user)
    except IntegrityError:
        raise UserError(f"a user with email {email} already exists", status=409) from None


def authenticate(db: Database, email: str, password: str) -> tuple[dict[str, Any], int] | None:
    """(user, token version) if the email and password match an active account, else None.

    The token version goes into the JWT the login issues (see ``token_user``)."""
    with db.session() as s:
        user = s.scalars(select(User).where(User.email == email.strip().lower())).first()
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password) or not user.active:
            return None
        user.last_login_at = utcnow()
        s.flush()
        return user_to_dict(user), user.token_version


def get_user(db: Database, user_id: int) -> dict[str, Any] | None:
    with db.session() as s:
        user = s.get(User, user_id)
        return user_to_dict(user) if user else None


def token_user(db: Database, user_id: int) -> tuple[dict[str, Any], int] | None:
    """(user, token version) for checking a JWT: the one query each authenticated call makes."""
    with db.session() as s:
        user = s.get(User, user_id)
        return (user_to_dict(user), user.token_version) if user else None


def find_user(db: Database, email: str) -> dict[str, Any] | None:
    with db.session() as s:
        user = s.scalars(select(User).where(User.email == email.strip().lower())).first()
        return user_to_dict(user) if user else None


def list_users(db: Database, *, after: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Users by id; keyset-paginated with ``after`` (the last id seen)."""
    q = select(User).order_by(User.id).limit(limit)
    if after is not None:
        q = q.where(User.id > after)
    with db.session() as s:
        return [user_to_dict(u) for u in s.scalars(q)]


def update_user(db: Database, user_id: int, *, role: str | None = None, active: bool | None = None,
                password: str | None = None) -> dict[str, Any] | None:
    """Change a user. A new password, or a disable, revokes every token issued before it (the
    token version goes up), so re-enabling an account does not revive its old tokens."""
    _check(password=password, role=role)
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return None
        if role is not None:
            user.role = role
        if active is not None:
            user.active = active
        if password is not None:
            user.password_hash = generate_password_hash(password)
        if password is not None or active is False:
            user.token_version += 1
        s.flush()
        return user_to_dict(user)
