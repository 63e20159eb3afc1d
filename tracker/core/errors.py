"""The project's own error types: each carries a message a person can act on."""


class TrackerError(Exception):
    """An error whose message is safe and useful to show to the user as it is."""


class ConfigError(TrackerError):
    """The environment or .env file holds a missing or invalid setting."""


class DatabaseUnavailable(TrackerError):
    """The database cannot be reached or is not migrated."""


class CredentialError(TrackerError):
    """A stored credential cannot be decrypted with the configured keys."""


class NotFound(TrackerError):
    """The named object does not exist."""


class InvalidInput(TrackerError):
    """The user gave a value that cannot be accepted; nothing was changed."""


class PermissionDenied(TrackerError):
    """The user's role does not allow this action."""
