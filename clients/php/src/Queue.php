<?php

declare(strict_types=1);

namespace Defer;

/**
 * One queue's counters, as GET /v1/queues answers them (docs/http-api.md,
 * "Queues"). A typed object rather than the raw array, so that a typo in a
 * field name is an error instead of a silent null.
 *
 * A queue exists while it holds tasks (or a worker watches it), like a
 * beanstalk tube: an empty one disappears.
 */
final class Queue
{
    public function __construct(
        public readonly string $name,
        public readonly int $ready,
        public readonly int $delayed,
        public readonly int $reserved,
        /** Buried by a worker, not counting failed ones. */
        public readonly int $buried,
        /** Buried after their last attempt. */
        public readonly int $failed,
        /** Ready tasks with a priority under 1024. */
        public readonly int $urgent,
        public readonly int $workersWaiting,
        public readonly int $totalEnqueued,
        public readonly int $totalDone,
        public readonly bool $paused,
        /**
         * Seconds until the pause ends; 0 when not paused; null when paused
         * until resumed (a server of this writing reports such a pause as
         * about 136 years instead).
         */
        public readonly ?int $pauseSecondsLeft,
        /** One-minute moving average. */
        public readonly float $enqueuedPerSecond,
        /** One-minute moving average. */
        public readonly float $donePerSecond,
    ) {
    }

    /**
     * @param array<mixed> $data the server's queue object
     *
     * @throws \UnexpectedValueException when a field is missing or of the wrong type
     */
    public static function fromArray(array $data): self
    {
        $f = new Fields($data, 'queue');

        return new self(
            name: $f->string('name'),
            ready: $f->int('ready'),
            delayed: $f->int('delayed'),
            reserved: $f->int('reserved'),
            buried: $f->int('buried'),
            failed: $f->int('failed'),
            urgent: $f->int('urgent'),
            workersWaiting: $f->int('workers_waiting'),
            totalEnqueued: $f->int('total_enqueued'),
            totalDone: $f->int('total_done'),
            paused: $f->bool('paused'),
            pauseSecondsLeft: $f->optInt('pause_seconds_left'),
            enqueuedPerSecond: $f->float('enqueued_per_second'),
            donePerSecond: $f->float('done_per_second'),
        );
    }
}
