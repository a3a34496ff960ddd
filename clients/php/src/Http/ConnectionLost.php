<?php

declare(strict_types=1);

namespace Defer\Http;

/**
 * The connection broke during an exchange. Says how far the exchange had got,
 * which decides whether sending the request again is safe.
 *
 * @internal never leaves Connection: it becomes a ConnectionException or a retry
 */
final class ConnectionLost extends \RuntimeException
{
    /**
     * @param bool $requestStarted at least one byte of the request was handed to the kernel
     * @param bool $answerStarted  at least one byte of an answer arrived
     */
    public function __construct(
        string $message,
        public readonly bool $requestStarted,
        public readonly bool $answerStarted,
    ) {
        parent::__construct($message);
    }
}
