<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * Any other failure reported by the server (500, or a status this client does
 * not expect), or an answer that is not what deferd sends: not HTTP, not
 * JSON, or JSON of the wrong shape (a proxy in the way, or the URL points at
 * something that is not deferd).
 */
class ServerException extends DeferException
{
}
