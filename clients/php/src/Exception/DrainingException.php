<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 503: the server is draining (it was sent SIGUSR1, typically before a
 * shutdown or an upgrade): new tasks are refused; reading, cancelling,
 * pausing still work. Retry against another server or later.
 */
class DrainingException extends DeferException
{
}
