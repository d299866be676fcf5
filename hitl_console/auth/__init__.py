"""Authentication: users, JWTs (pinned HS256, expiry, maximum age, revocable jti, a token
version per user), CSRF, login limits (per-IP lock, per-account progressive delay)."""
