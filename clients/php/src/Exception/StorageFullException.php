<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 507: the disk holding the server's log is full. New tasks are refused;
 * cancels still work, which is also how space can be freed.
 */
class StorageFullException extends DeferException
{
}
