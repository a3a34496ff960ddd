<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Exception\NotFoundException;
use Defer\Exception\ValidationException;
use Defer\Queue;
use Defer\Tests\Support\ClientTestCase;

/** queues(), queue(), pause(), resume(), kick(), stats(), health(). */
final class QueueTest extends ClientTestCase
{
    public function testQueuesListsEveryQueueByName(): void
    {
        $client = $this->client();
        $queue = $this->queueName('mail');
        $client->dispatchMany($queue, ['a', 'b', 'c']);
        $client->dispatch($queue, 'd', ['delay' => 60]);
        $client->dispatch($queue, 'e', ['priority' => 0]);

        $queues = $client->queues();
        $this->assertArrayHasKey($queue, $queues);
        $this->assertContainsOnlyInstancesOf(Queue::class, $queues);
        foreach ($queues as $name => $info) {
            $this->assertSame($name, $info->name);
        }
        $q = $queues[$queue];
        $this->assertSame(4, $q->ready);
        $this->assertSame(1, $q->delayed);
        $this->assertSame(0, $q->reserved);
        $this->assertSame(0, $q->buried);
        $this->assertSame(0, $q->failed);
        $this->assertSame(1, $q->urgent);
        $this->assertSame(5, $q->totalEnqueued);
        $this->assertSame(0, $q->totalDone);
        $this->assertFalse($q->paused);
        $this->assertSame(0, $q->pauseSecondsLeft);
        $this->assertIsFloat($q->enqueuedPerSecond);
        $this->assertIsFloat($q->donePerSecond);
        $this->assertEquals($q, $client->queue($queue));
    }

    public function testQueueIsNullWhenItDoesNotExist(): void
    {
        $client = $this->client();
        $this->assertNull($client->queue($this->queueName('none')));
        $this->assertArrayNotHasKey('none-never', $client->queues());
    }

    public function testAnInvalidQueueNameIsAValidationError(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(ValidationException::class, fn () => $client->queue('-x'));

        $this->assertServerError($e, 400, 'invalid_field', 'invalid queue name');
    }

    public function testPauseStopsWorkersUntilResume(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $id = $client->dispatch($queue, 'x')->id;
        $worker = $this->worker($queue);

        $paused = $client->pause($queue);
        $this->assertTrue($paused->paused);
        // Without seconds: until resumed, which servers say as null or as a very long time.
        $this->assertTrue($paused->pauseSecondsLeft === null || $paused->pauseSecondsLeft > 86400 * 365);
        $this->assertNull($worker->reserve(0), 'nothing is reserved from a paused queue');

        $resumed = $client->resume($queue);
        $this->assertFalse($resumed->paused);
        $this->assertSame(0, $resumed->pauseSecondsLeft);
        $this->assertSame($id, $worker->reserve(0)[0] ?? null);
    }

    public function testPauseForSomeSeconds(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $client->dispatch($queue, 'x');

        $paused = $client->pause($queue, 300);
        $this->assertTrue($paused->paused);
        $this->assertSame(300, $paused->pauseSecondsLeft);
        $this->assertTrue($client->queue($queue)?->paused);
        $client->resume($queue);
    }

    public function testPauseResumeAndKickOfAMissingQueueThrowNotFound(): void
    {
        $client = $this->client();
        $queue = $this->queueName('none');
        foreach ([fn () => $client->pause($queue, 5), fn () => $client->resume($queue), fn () => $client->kick($queue)] as $call) {
            $e = $this->expectThrown(NotFoundException::class, $call);
            $this->assertServerError($e, 404, 'not_found', "no queue named '$queue'");
        }
    }

    public function testKickMovesBuriedTasksBack(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $ids = array_map(static fn ($t) => $t->id, $client->dispatchMany($queue, ['a', 'b', 'c']));
        foreach ($ids as $id) {
            $worker->reserve();
            $worker->bury($id);
        }
        $this->assertSame(3, $client->queue($queue)?->buried);

        $this->assertSame(2, $client->kick($queue, 2));
        $this->assertSame(1, $client->kick($queue));
        $this->assertSame(0, $client->kick($queue), 'none buried, none delayed');
        $this->assertSame(3, $client->queue($queue)?->ready);
    }

    public function testKickMovesDelayedTasksWhenNoneIsBuried(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $client->dispatch($queue, 'x', ['delay' => 600]);

        $this->assertSame(1, $client->kick($queue));
        $this->assertSame(1, $client->queue($queue)?->ready);
    }

    public function testStatsAndHealth(): void
    {
        $client = $this->client();
        $stats = $client->stats();

        $this->assertIsString($stats['version'] ?? null);
        $this->assertFalse($stats['draining']);
        $this->assertSame(1, $stats['connections']['http'] ?? null, 'this client is the only HTTP connection');
        $this->assertIsArray($stats['tasks'] ?? null);
        $this->assertIsArray($stats['log'] ?? null, 'the tests run deferd with -b');
        $this->assertSame('ok', $client->health());
    }
}
