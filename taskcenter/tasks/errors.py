"""Domain errors with OCP's error codes, raised by services and selectors.

Every face (API, pages, CLI) turns these into its own message; none invents its own.
"""


class TaskCenterError(Exception):
    code = 50000
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TaskNotFound(TaskCenterError):
    code = 20000
    http_status = 404


class InvalidState(TaskCenterError):
    code = 20003
    http_status = 400


class RollbackProhibited(TaskCenterError):
    code = 20004
    http_status = 400


class NotPermitted(TaskCenterError):
    code = 30014
    http_status = 403


class InvalidDefinition(TaskCenterError):
    code = 10000
    http_status = 400


class InvalidParameter(TaskCenterError):
    """A request parameter is malformed or out of range; the message names it."""

    code = 10001
    http_status = 400
