<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 401: the server requires a token (--http-token-file) and the request had
 * none, or the wrong one. Pass the token as the "token" option.
 */
class AuthenticationException extends DeferException
{
}
