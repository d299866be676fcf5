"""Authentication: users, JWTs (pinned HS256, expiry, maximum age, revocable jti, a token
version per user), CSRF, login limits (per-address lock, per-account progressive delay, and
a per-account budget for clients the account does not know)."""
