<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * Base of everything this client throws for a failed call.
 *
 * One catch block covers every way a call to deferd can go wrong: the server
 * could not be reached (ConnectionException, TimeoutException) or it refused
 * the request (the other subclasses, one per kind of refusal, so callers can
 * react to exactly the case they care about).
 *
 * When the server answered, the HTTP status, the server's error code (such as
 * "unknown_field") and the server's own message are kept apart from the
 * exception message, which always repeats the server's message in full.
 * Mistakes in the calling code itself (a negative task id, an option of the
 * wrong PHP type) are \InvalidArgumentException, as in PHP's own functions.
 */
abstract class DeferException extends \RuntimeException
{
    /**
     * @param int|null    $status        HTTP status of the answer; null when there was none
     * @param string|null $errorCode     the server's error code ("unknown_field", "draining", ...)
     * @param string|null $serverMessage the server's message, verbatim
     */
    public function __construct(
        string $message,
        private readonly ?int $status = null,
        private readonly ?string $errorCode = null,
        private readonly ?string $serverMessage = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, $status ?? 0, $previous);
    }

    /** The HTTP status of the server's answer, or null when no answer came. */
    public function getStatus(): ?int
    {
        return $this->status;
    }

    /**
     * The server's error code: "invalid_json", "invalid_field", "unknown_field",
     * "missing_field", "bad_request", "unauthorized", "not_found", "task_running",
     * "finished", "too_large", "draining", "storage_full", ... or null when the
     * answer carried none (no answer at all, or one not written by deferd).
     *
     * Named apart from getCode(), which PHP fixes to an int: that is the status.
     */
    public function getErrorCode(): ?string
    {
        return $this->errorCode;
    }

    /** What the server said was wrong and what to do, verbatim; null without an answer. */
    public function getServerMessage(): ?string
    {
        return $this->serverMessage;
    }
}
