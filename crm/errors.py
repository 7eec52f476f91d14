"""Domain errors raised by services; the API and views turn them into 4xx answers."""


class DomainError(Exception):
    """A request the domain refuses; carries an HTTP status, a code and field messages."""

    status = 422
    code = "invalid"

    def __init__(self, message, fields=None, code=None, status=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code
        if status:
            self.status = status


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
