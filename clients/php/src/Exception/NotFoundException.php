<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 404: no such task, queue, key or endpoint.
 *
 * Methods whose question can sensibly be answered with "none" (task(),
 * queue(), cancelKey()) return null instead of throwing this.
 */
class NotFoundException extends DeferException
{
}
