<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * No complete answer arrived within the configured timeout (or the TCP
 * connection could not be set up within connect_timeout).
 *
 * A subclass of ConnectionException, because it is one more way of not
 * getting an answer: code that only cares whether deferd was reachable
 * catches ConnectionException. The connection is dropped, so a late answer
 * can never be mistaken for the answer to a later request.
 */
class TimeoutException extends ConnectionException
{
}
