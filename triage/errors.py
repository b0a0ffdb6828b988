"""The project's own exceptions: the CLI turns each into one line and a non-zero exit."""


class TriageError(Exception):
    """Base class: anything the user can fix, with a message that says how."""

    exit_code = 1


class ConfigError(TriageError):
    """The configuration file is missing, unreadable, or has a bad key or value."""

    exit_code = 2


class InputError(TriageError):
    """A file or argument given on the command line cannot be used."""

    exit_code = 2


class MailboxError(TriageError):
    """The mail store cannot be reached or refused an operation (network, TLS, folder)."""


class AuthError(MailboxError):
    """The server refused the credentials: retrying will not help until the user acts."""


class LockedError(TriageError):
    """Another triage process is working on the same account right now."""


class StateError(TriageError):
    """The state database cannot be opened or written."""


class TemplateError(TriageError):
    """A draft template is missing or broken (usually a user-edited template)."""


class ModelError(TriageError):
    """The trained model is missing, corrupt or does not match this version."""
