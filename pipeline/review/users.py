"""People who review: annotators and admins, with argon2id password hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.errors import AuthenticationError, ReviewInputError
from pipeline.records import User, UserRole
from pipeline.store import Store, now

__all__ = ["add_user", "authenticate", "list_users", "set_password", "MIN_PASSWORD_LENGTH"]

MIN_PASSWORD_LENGTH = 8
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the library's current recommended parameters


def add_user(store: Store, name: str, role: UserRole | str, password: str) -> User:
    """Create a user with a hashed password.

    Raises
    ------
    ReviewInputError
        The name is empty or has characters other than letters, digits and ``._-@``; the
        role is unknown; or the password is shorter than 8 characters.
    UserExistsError
        The name is taken.
    """
    if not name or len(name) > 120 or not set(name) <= _NAME_CHARS:
        raise ReviewInputError(f"user name {name!r}: use 1 to 120 letters, digits, '.', '_', '-' or '@'.")
    try:
        role = UserRole(role)
    except ValueError:
        raise ReviewInputError(f"role {role!r}: expected one of {', '.join(r.value for r in UserRole)}.") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ReviewInputError(f"the password of {name!r} is too short: use at least {MIN_PASSWORD_LENGTH} characters.")
    return store.add_user(name, role.value, _hasher().hash(password), now())


def set_password(store: Store, name: str, password: str) -> int:
    """Give a user a new password and end every review-page session they have open (issue 20).

    Returns the number of sessions ended.

    Raises
    ------
    ReviewInputError
        No such user, or the password is shorter than 8 characters.
    """
    import time

    if store.user_with_hash(name) is None:
        raise ReviewInputError(f"no user {name!r}; see 'codeer users list'.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ReviewInputError(f"the password of {name!r} is too short: use at least {MIN_PASSWORD_LENGTH} characters.")
    store.set_user_password_hash(name, _hasher().hash(password))
    return store.revoke_user_sessions(name, time.time())


# verified when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY_HASH = PasswordHasher().hash("codeer-no-such-user")


def authenticate(store: Store, name: str, password: str) -> User:
    """The user whose name and password these are.

    Rehashes the password when the stored hash used older parameters.

    Raises
    ------
    AuthenticationError
        Unknown name, wrong password or inactive user (one message for all three).
    """
    hasher = _hasher()
    found = store.user_with_hash(name)
    stored_hash = found[1] if found else _DUMMY_HASH
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("wrong user name or password.") from None
    if found is None or not found[0].active:
        raise AuthenticationError("wrong user name or password.")
    if hasher.check_needs_rehash(stored_hash):
        store.set_user_password_hash(name, hasher.hash(password))
    return found[0]


def list_users(store: Store) -> list[User]:
    """Every user, by name."""
    return store.list_users()
