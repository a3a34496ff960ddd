<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 413: a payload over the server's maximum task size (deferd -z), or a
 * request body over --http-max-body. The server closes the connection after
 * this answer; the client opens a new one for the next call.
 */
class TooLargeException extends DeferException
{
}
