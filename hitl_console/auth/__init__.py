"""Authentication: users, JWTs (pinned HS256, expiry, revocable jti), CSRF, login limits."""
