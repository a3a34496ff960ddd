<?php

declare(strict_types=1);

namespace Defer;

/**
 * Where a task is in its life (docs/http-api.md, "The task object").
 *
 * An enum rather than strings so that a misspelt state is a compile-time
 * mistake in the caller, and a `match` over the states can be exhaustive.
 */
enum TaskState: string
{
    /** Waiting for a worker. */
    case Ready = 'ready';
    /** Waiting for its run time (delay or run_at). */
    case Delayed = 'delayed';
    /** A worker holds it and is running it. */
    case Reserved = 'reserved';
    /** Put aside by a worker (bury); kick brings it back. */
    case Buried = 'buried';
    /** Buried after its last allowed attempt (max_attempts). */
    case Failed = 'failed';
    /** Deleted by a worker: it ran. */
    case Done = 'done';
    /** Cancelled through the API before a worker took it. */
    case Cancelled = 'cancelled';

    /**
     * True once nothing more will happen to the task: done, failed or cancelled.
     *
     * Failed counts as finished because without a kick it stays where it is;
     * the server refuses to cancel it for the same reason (409 finished).
     */
    public function isFinished(): bool
    {
        return match ($this) {
            self::Done, self::Failed, self::Cancelled => true,
            self::Ready, self::Delayed, self::Reserved, self::Buried => false,
        };
    }
}
