"""The project's exception hierarchy: every error a user can meet, with a message that says
what went wrong and what to do about it."""


class ModelHubError(Exception):
    """Base class of every error Model Hub raises on purpose."""
