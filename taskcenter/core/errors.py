"""Domain errors with OCP's error codes, raised by services and selectors.

Every face (API, pages, CLI) turns these into its own message; none invents its own.
"""

from __future__ import annotations


class TaskCenterError(Exception):
    """The base: `code` is OCP's error code, `http_status` what the API answers with."""

    code, http_status = 50000, 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TaskNotFound(TaskCenterError):
    """No such task or subtask, or one the caller may not see."""

    code, http_status = 20000, 404


class InvalidState(TaskCenterError):
    """The operation does not apply to the task or subtask in its current state."""

    code, http_status = 20003, 400


class RollbackProhibited(TaskCenterError):
    """The task was started with rollback prohibited."""

    code, http_status = 20004, 400


class NotPermitted(TaskCenterError):
    """The caller is signed in but lacks the permission."""

    code, http_status = 30014, 403


class InvalidDefinition(TaskCenterError):
    """A task definition is malformed (unknown kind, cycle, missing action...)."""

    code, http_status = 10000, 400


class InvalidParameter(TaskCenterError):
    """A request parameter (or form field) is malformed or out of range.

    `parameter` names it as data, so that the API's error envelope (its `target`) and a
    form (the field to mark) never read the name back out of the words. `message` is the
    whole sentence shown to people, by convention "Invalid parameter 'name': why"
    (`because` writes it). `parameter` is None for a refusal that concerns no one field.
    """

    code, http_status = 10001, 400
    PREFIX = "Invalid parameter '"

    def __init__(self, parameter: str | None, message: str):
        super().__init__(message)
        self.parameter = parameter

    @classmethod
    def because(cls, parameter: str, why: str) -> InvalidParameter:
        """The conventional sentence: "Invalid parameter '<parameter>': <why>"."""
        return cls(parameter, f"{cls.PREFIX}{parameter}': {why}")

    @property
    def reason(self) -> str:
        """The message without its conventional "Invalid parameter 'name': " opening."""
        return self.message.removeprefix(f"{self.PREFIX}{self.parameter}': ")
