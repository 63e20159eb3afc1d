"""Dashboard users: passwords, lockout, roles and invitations."""
