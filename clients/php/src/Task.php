<?php

declare(strict_types=1);

namespace Defer;

use DateTimeImmutable;

/**
 * A task as deferd describes it (docs/http-api.md, "The task object"), plus
 * what the enqueue that returned it did (deduplicated, replaced, superseded).
 *
 * Immutable: it is a snapshot of the task at the moment of the answer. Ask
 * Client::task() again for a fresh one.
 *
 * A few fields are nullable only because of one terse answer: when the server
 * keeps no history of finished tasks (deferd --history-max 0) a cancel answers
 * just {"id": ..., "state": "cancelled"}, and then queue, priority, ttr,
 * attempts, maxAttempts and createdAt are null. Every other answer has them.
 */
final class Task
{
    /**
     * @param mixed $payload the payload decoded from JSON (objects become
     *                       associative arrays), or the bytes of a raw task
     *                       ($raw true), or null when the answer had none
     *                       ($hasPayload false: finished tasks are kept
     *                       without their payload)
     */
    public function __construct(
        public readonly int $id,
        public readonly TaskState $state,
        public readonly ?string $queue = null,
        public readonly ?int $priority = null,
        public readonly ?int $ttr = null,
        public readonly ?int $attempts = null,
        public readonly ?int $maxAttempts = null,
        public readonly ?string $key = null,
        public readonly ?DateTimeImmutable $createdAt = null,
        public readonly ?DateTimeImmutable $runAt = null,
        public readonly ?DateTimeImmutable $finishedAt = null,
        public readonly ?string $lastError = null,
        public readonly mixed $payload = null,
        public readonly bool $hasPayload = false,
        public readonly bool $raw = false,
        public readonly bool $deduplicated = false,
        public readonly bool $replaced = false,
        public readonly ?int $superseded = null,
    ) {
    }

    /**
     * Builds a task from the server's JSON object (decoded as an array).
     *
     * @param array<mixed> $data
     *
     * @throws \UnexpectedValueException when a field is missing or of the wrong type:
     *                                   the answer was not deferd's
     */
    public static function fromArray(array $data): self
    {
        $f = new Fields($data, 'task');
        $hasJson = array_key_exists('payload', $data);
        $base64 = $f->optString('payload_base64');
        $payload = $hasJson ? $data['payload'] : null;
        if ($base64 !== null) {
            $bytes = base64_decode($base64, true);
            if ($bytes === false) {
                throw new \UnexpectedValueException('task.payload_base64 is not base64');
            }
            $payload = $bytes;
        }
        $state = TaskState::tryFrom($f->string('state'));
        if ($state === null) {
            throw new \UnexpectedValueException(sprintf('task.state "%s" is not a known state', $data['state']));
        }

        return new self(
            id: $f->int('id'),
            state: $state,
            queue: $f->optString('queue'),
            priority: $f->optInt('priority'),
            ttr: $f->optInt('ttr'),
            attempts: $f->optInt('attempts'),
            maxAttempts: $f->optInt('max_attempts'),
            key: $f->optString('key'),
            createdAt: $f->optTime('created_at'),
            runAt: $f->optTime('run_at'),
            finishedAt: $f->optTime('finished_at'),
            lastError: $f->optString('last_error'),
            payload: $payload,
            hasPayload: $hasJson || $base64 !== null,
            raw: $base64 !== null,
            deduplicated: $f->optBool('deduplicated') ?? false,
            replaced: $f->optBool('replaced') ?? false,
            superseded: $f->optInt('superseded'),
        );
    }

    /** Done, failed or cancelled: nothing more will happen to it (short of a kick of a failed one). */
    public function isFinished(): bool
    {
        return $this->state->isFinished();
    }

    /** Still waiting or running: ready, delayed, reserved or buried. */
    public function isPending(): bool
    {
        return !$this->state->isFinished();
    }

    public function isCancelled(): bool
    {
        return $this->state === TaskState::Cancelled;
    }

    /**
     * True when the enqueue that returned this task created it. False when a
     * task already holding the key was returned unchanged (deduplicated) or
     * changed in place (replaced). A superseding enqueue creates a new task.
     */
    public function isNew(): bool
    {
        return !$this->deduplicated && !$this->replaced;
    }
}
