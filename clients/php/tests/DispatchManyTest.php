<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Client;
use Defer\Exception\TooLargeException;
use Defer\Exception\ValidationException;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;
use Defer\Tests\Support\Servers;

/** dispatchMany(): one request per 10,000 tasks (and per max_body bytes), all or nothing per request. */
final class DispatchManyTest extends ClientTestCase
{
    public function testFiveThousandMailsInOneRequest(): void
    {
        $client = $this->client();
        $queue = $this->queueName('mail');
        $mails = [];
        for ($i = 0; $i < 5000; $i++) {
            $mails[] = ['to' => "user$i@example.org", 'template' => 'newsletter'];
        }
        $tasks = $client->dispatchMany($queue, $mails);

        $this->assertCount(5000, $tasks);
        $this->assertSame(range(0, 4999), array_keys($tasks));
        foreach ($tasks as $i => $task) {
            $this->assertSame($mails[$i], $task->payload);
            $this->assertSame(TaskState::Ready, $task->state);
            if ($i > 0) {
                $this->assertSame($tasks[$i - 1]->id + 1, $task->id, 'one commit gives consecutive ids');
            }
        }
        $this->assertSame(5000, $client->queue($queue)?->ready);
        $this->assertSame(1, $client->connectCount());
        $worker = $this->worker($queue);
        $this->assertSame([$tasks[0]->id, '{"to":"user0@example.org","template":"newsletter"}'], $worker->reserve());
    }

    public function testItemsWithOptionsOverrideTheDefaults(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $tasks = $client->dispatchMany($queue, [
            'plain',
            ['payload' => ['x' => 1], 'priority' => 1],
            ['payload' => 'now', 'delay' => null],
            ['a' => 'an array payload without a payload key'],
            ['payload' => 'bytes', 'raw' => true, 'key' => 'k1'],
        ], ['priority' => 10, 'delay' => 30]);

        $this->assertSame('plain', $tasks[0]->payload);
        $this->assertSame(10, $tasks[0]->priority);
        $this->assertSame(TaskState::Delayed, $tasks[0]->state);
        $this->assertSame(['x' => 1], $tasks[1]->payload);
        $this->assertSame(1, $tasks[1]->priority);
        $this->assertSame(TaskState::Ready, $tasks[2]->state);
        $this->assertSame(['a' => 'an array payload without a payload key'], $tasks[3]->payload);
        $this->assertTrue($tasks[4]->raw);
        $this->assertSame('bytes', $tasks[4]->payload);
        $this->assertSame('k1', $tasks[4]->key);
    }

    public function testKeysDeduplicateWithinABatch(): void
    {
        $tasks = $this->client()->dispatchMany($this->queueName(), [
            ['payload' => 1, 'key' => 'same'],
            ['payload' => 2, 'key' => 'same'],
            ['payload' => 3, 'key' => 'same', 'replace' => true],
        ]);

        $this->assertTrue($tasks[0]->isNew());
        $this->assertTrue($tasks[1]->deduplicated);
        $this->assertSame($tasks[0]->id, $tasks[1]->id);
        $this->assertTrue($tasks[2]->replaced);
        $this->assertSame(3, $tasks[2]->payload);
    }

    public function testAGeneratorWorksAndNothingSendsNoRequest(): void
    {
        $client = $this->client();
        $this->assertSame([], $client->dispatchMany($this->queueName(), []));
        $this->assertSame(0, $client->connectCount());

        $generate = static function (): \Generator {
            for ($i = 0; $i < 3; $i++) {
                yield 'same-key' => $i; // keys of the iterable do not matter
            }
        };
        $tasks = $client->dispatchMany($this->queueName(), $generate());
        $this->assertSame([0, 1, 2], array_map(static fn ($t) => $t->payload, $tasks));
    }

    public function testOneRequestIsAllOrNothing(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $items = array_fill(0, 10, 'ok');
        $items[3] = ['payload' => 'bad', 'priority' => 'high'];
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatchMany($queue, $items));

        $this->assertServerError($e, 400, 'invalid_field', 'tasks[3]: priority must be an integer');
        $this->assertNull($client->queue($queue), 'no task of the batch was enqueued');
    }

    public function testMoreThanTenThousandTasksTakeTwoRequests(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $tasks = $client->dispatchMany($queue, array_fill(0, Client::BATCH_MAX + 1, 'x'));

        $this->assertCount(10001, $tasks);
        $this->assertSame(10001, $client->queue($queue)?->ready);
        $this->assertSame(1, $client->connectCount());
    }

    public function testTheRequestsBeforeARefusedOneStayEnqueued(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $items = array_fill(0, Client::BATCH_MAX + 5, 'x');
        $items[Client::BATCH_MAX + 2] = ['payload' => 'bad', 'ttr' => 0];
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatchMany($queue, $items));

        // The second request holds items 10000 to 10004; its third task is bad.
        $this->assertServerError($e, 400, 'invalid_field', 'tasks[2]: ttr must be an integer');
        $this->assertStringContainsString('items 10000 to 10004', $e->getMessage());
        $this->assertStringContainsString('the 10000 items before were enqueued', $e->getMessage());
        $this->assertInstanceOf(ValidationException::class, $e->getPrevious());
        $this->assertSame(Client::BATCH_MAX, $client->queue($queue)?->ready);
    }

    public function testBatchesAreSplitToStayUnderMaxBody(): void
    {
        // The shared server takes bodies up to 1 MiB: 1000 tasks of 2 KiB
        // need at least two requests.
        $queue = $this->queueName();
        $items = array_fill(0, 1000, ['blob' => str_repeat('b', 2048)]);

        $tasks = $this->client()->dispatchMany($queue, $items);
        $this->assertCount(1000, $tasks);
        $this->assertSame(1000, $this->client()->queue($queue)?->ready);

        // The same in one request is refused: the splitting is what made it work.
        $unsplit = $this->client(['max_body' => 64 * 1024 * 1024]);
        $e = $this->expectThrown(TooLargeException::class, fn () => $unsplit->dispatchMany($this->queueName(), $items));
        $this->assertServerError($e, 413, 'too_large', 'request too large');
        $this->assertGreaterThan(Servers::SHARED_MAX_BODY, 1000 * 2048);
    }

    public function testAnItemThatCannotBeJsonIsNamed(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('item 2:');
        $this->client()->dispatchMany($this->queueName(), ['a', 'b', "\xff"]);
    }
}
