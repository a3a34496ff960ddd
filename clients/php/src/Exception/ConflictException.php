<?php

declare(strict_types=1);

namespace Defer\Exception;

/**
 * 409: the task cannot be cancelled in its current state. getErrorCode() is
 * "task_running" (a worker holds it: release or delete it from the worker,
 * or wait for its TTR) or "finished" (it is done or failed already).
 */
class ConflictException extends DeferException
{
}
