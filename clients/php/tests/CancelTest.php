<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Exception\ConflictException;
use Defer\Exception\NotFoundException;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;

/** cancel() and cancelKey(), including the answers that refuse. */
final class CancelTest extends ClientTestCase
{
    public function testCancelAnsweresTheCancelledTask(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $task = $client->dispatch($queue, ['x' => 1], ['delay' => 60, 'key' => 'k']);

        $cancelled = $client->cancel($task->id);
        $this->assertSame($task->id, $cancelled->id);
        $this->assertSame(TaskState::Cancelled, $cancelled->state);
        $this->assertTrue($cancelled->isCancelled());
        $this->assertTrue($cancelled->isFinished());
        $this->assertNotNull($cancelled->finishedAt);
        $this->assertSame('k', $cancelled->key);
        $this->assertSame($queue, $cancelled->queue);

        $again = $client->cancel($task->id);
        $this->assertEquals($cancelled, $again, 'cancelling again answers the same');
        $this->assertSame(TaskState::Cancelled, $client->task($task->id)?->state);
        $this->assertNull($client->queue($queue), 'the queue is empty, so it is gone');
    }

    public function testCancellingAnUnknownTaskThrowsNotFound(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(NotFoundException::class, fn () => $client->cancel(PHP_INT_MAX));

        $this->assertServerError($e, 404, 'not_found', 'no task ' . PHP_INT_MAX);
    }

    public function testCancellingARunningTaskThrowsConflictTaskRunning(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $task = $client->dispatch($queue, 'x', ['key' => 'k']);
        $this->assertSame($task->id, $worker->reserve()[0] ?? null);

        $e = $this->expectThrown(ConflictException::class, fn () => $client->cancel($task->id));
        $this->assertServerError($e, 409, 'task_running', 'is reserved by a worker');

        $e = $this->expectThrown(ConflictException::class, fn () => $client->cancelKey($queue, 'k'));
        $this->assertServerError($e, 409, 'task_running', 'is reserved by a worker');

        // Released by the worker, it can be cancelled.
        $worker->release($task->id);
        $this->assertSame(TaskState::Cancelled, $client->cancelKey($queue, 'k')?->state);
    }

    public function testCancellingADoneTaskThrowsConflictFinished(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $task = $client->dispatch($queue, 'x');
        $worker->reserve();
        $worker->delete($task->id);

        $e = $this->expectThrown(ConflictException::class, fn () => $client->cancel($task->id));
        $this->assertServerError($e, 409, 'finished', 'has already finished');
    }

    public function testCancelKeyCancelsTheHolder(): void
    {
        $client = $this->client();
        $queue = $this->queueName('network');
        $task = $client->dispatch($queue, ['room' => 301], ['key' => 'room-301', 'delay' => 2700]);

        $cancelled = $client->cancelKey($queue, 'room-301');
        $this->assertSame($task->id, $cancelled?->id);
        $this->assertSame(TaskState::Cancelled, $cancelled->state);
        $this->assertNull($client->cancelKey($queue, 'room-301'), 'nothing holds the key any more');

        // The key is free again.
        $this->assertTrue($client->dispatch($queue, 'again', ['key' => 'room-301'])->isNew());
    }

    public function testCancelKeyIsNullWhenNothingHoldsTheKey(): void
    {
        $client = $this->client();
        $this->assertNull($client->cancelKey($this->queueName('none'), 'room-301'));
        $queue = $this->queueName();
        $client->dispatch($queue, 'x', ['key' => 'other']);
        $this->assertNull($client->cancelKey($queue, 'room-301'));
    }

    public function testCancelIdsArePositive(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->cancel(-1);
    }
}
