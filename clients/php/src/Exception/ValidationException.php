<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 400: the server refused a malformed request. getErrorCode() is one of
 * "invalid_json", "invalid_field", "unknown_field", "missing_field",
 * "bad_request"; the message names the field (in a batch, with its index:
 * "tasks[3]: ...") and says what is allowed.
 */
class ValidationException extends DeferException
{
}
