<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * deferd could not be reached, or the connection broke before a complete
 * answer arrived.
 *
 * When this is thrown by a call that changes something (dispatch, cancel,
 * pause, ...), the request may or may not have been carried out: the client
 * never sends such a request twice. Give tasks a key to make a retry safe.
 */
class ConnectionException extends DeferException
{
}
