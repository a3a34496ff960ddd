<?php

declare(strict_types=1);

namespace Defer\Tests;

use DateTimeImmutable;
use DateTimeZone;
use Defer\Exception\ValidationException;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;

/** dispatch(): every option, what the server answers, and what a worker receives. */
final class DispatchTest extends ClientTestCase
{
    public function testDispatchCreatesAReadyTask(): void
    {
        $queue = $this->queueName('mail');
        $task = $this->client()->dispatch($queue, ['to' => 'ana@example.org']);

        $this->assertGreaterThan(0, $task->id);
        $this->assertSame($queue, $task->queue);
        $this->assertSame(TaskState::Ready, $task->state);
        $this->assertSame(1024, $task->priority);
        $this->assertSame(60, $task->ttr);
        $this->assertSame(0, $task->attempts);
        $this->assertSame(0, $task->maxAttempts);
        $this->assertNull($task->key);
        $this->assertInstanceOf(DateTimeImmutable::class, $task->createdAt);
        $this->assertSame('UTC', $task->createdAt->getTimezone()->getName());
        $this->assertNull($task->runAt);
        $this->assertNull($task->finishedAt);
        $this->assertNull($task->lastError);
        $this->assertSame(['to' => 'ana@example.org'], $task->payload);
        $this->assertTrue($task->hasPayload);
        $this->assertFalse($task->raw);
        $this->assertTrue($task->isNew());
        $this->assertTrue($task->isPending());
        $this->assertFalse($task->isFinished());
        $this->assertFalse($task->deduplicated);
        $this->assertFalse($task->replaced);
        $this->assertNull($task->superseded);
    }

    public function testAWorkerReservesThePayloadsCompactJsonText(): void
    {
        $queue = $this->queueName('mail');
        $worker = $this->worker($queue);
        $client = $this->client();
        $task = $client->dispatch($queue, ['to' => 'zoë@example.org', 'path' => 'a/b', 'n' => 1, 'ratio' => 1.0, 'tags' => ['x']]);
        $empty = $client->dispatch($queue, (object) []);
        $list = $client->dispatch($queue, []);
        $text = $client->dispatch($queue, 'plain "text"');

        $this->assertSame([$task->id, '{"to":"zoë@example.org","path":"a/b","n":1,"ratio":1.0,"tags":["x"]}'], $worker->reserve());
        $this->assertSame([$empty->id, '{}'], $worker->reserve());
        $this->assertSame([$list->id, '[]'], $worker->reserve());
        $this->assertSame([$text->id, '"plain \"text\""'], $worker->reserve());
    }

    public function testPriorityTtrAndMaxAttempts(): void
    {
        $task = $this->client()->dispatch($this->queueName(), 'x', ['priority' => 5, 'ttr' => 120, 'max_attempts' => 3]);

        $this->assertSame(5, $task->priority);
        $this->assertSame(120, $task->ttr);
        $this->assertSame(3, $task->maxAttempts);
    }

    public function testDelayMakesADelayedTask(): void
    {
        $task = $this->client()->dispatch($this->queueName(), 'x', ['delay' => 60]);

        $this->assertSame(TaskState::Delayed, $task->state);
        $this->assertNotNull($task->runAt);
        // The server computes both from one clock reading.
        $this->assertSame(60000, self::millis($task->runAt) - self::millis($task->createdAt));
    }

    public function testFractionalDelay(): void
    {
        $task = $this->client()->dispatch($this->queueName(), 'x', ['delay' => 90.5]);

        $this->assertSame(90500, self::millis($task->runAt) - self::millis($task->createdAt));
    }

    public function testRunAtAsDateTimeInAnyTimeZone(): void
    {
        $at = new DateTimeImmutable('2040-03-04 13:45:00.250', new DateTimeZone('Pacific/Auckland'));
        $task = $this->client()->dispatch($this->queueName(), 'x', ['run_at' => $at]);

        $this->assertSame(TaskState::Delayed, $task->state);
        $this->assertSame(self::millis($at), self::millis($task->runAt));
        $this->assertSame('UTC', $task->runAt->getTimezone()->getName());
    }

    public function testRunAtAsUnixSecondsAndAsString(): void
    {
        $client = $this->client();
        $at = time() + 7200;
        $byNumber = $client->dispatch($this->queueName(), 'x', ['run_at' => $at]);
        $byString = $client->dispatch($this->queueName(), 'x', ['run_at' => gmdate('Y-m-d\TH:i:s\Z', $at)]);

        $this->assertSame($at * 1000, self::millis($byNumber->runAt));
        $this->assertSame($at * 1000, self::millis($byString->runAt));
    }

    public function testRunAtInThePastMeansNow(): void
    {
        $task = $this->client()->dispatch($this->queueName(), 'x', ['run_at' => new DateTimeImmutable('2001-01-01')]);

        $this->assertSame(TaskState::Ready, $task->state);
        $this->assertNull($task->runAt);
    }

    public function testAKeyDeduplicatesByDefault(): void
    {
        $client = $this->client();
        $queue = $this->queueName('network');
        $first = $client->dispatch($queue, ['v' => 1], ['key' => 'room-301', 'delay' => 600]);
        $second = $client->dispatch($queue, ['v' => 2], ['key' => 'room-301', 'delay' => 60]);
        $third = $client->dispatch($queue, ['v' => 3], ['key' => 'room-301', 'replace' => false]);

        $this->assertTrue($first->isNew());
        $this->assertSame('room-301', $first->key);
        foreach ([$second, $third] as $again) {
            $this->assertSame($first->id, $again->id);
            $this->assertTrue($again->deduplicated);
            $this->assertFalse($again->replaced);
            $this->assertFalse($again->isNew());
            $this->assertSame(['v' => 1], $again->payload);
            $this->assertEquals($first->runAt, $again->runAt);
        }
    }

    public function testReplaceChangesTheHolderInPlace(): void
    {
        $client = $this->client();
        $queue = $this->queueName('network');
        $first = $client->dispatch($queue, ['v' => 1], ['key' => 'room-301', 'delay' => 600, 'priority' => 9]);
        $second = $client->dispatch($queue, ['v' => 2], ['key' => 'room-301', 'delay' => 60, 'replace' => true]);

        $this->assertSame($first->id, $second->id);
        $this->assertTrue($second->replaced);
        $this->assertFalse($second->deduplicated);
        $this->assertFalse($second->isNew());
        $this->assertSame(['v' => 2], $second->payload);
        $this->assertSame(1024, $second->priority);
        $this->assertSame(TaskState::Delayed, $second->state);
        $this->assertLessThan(self::millis($first->runAt), self::millis($second->runAt));
        $this->assertSame(['v' => 2], $client->task($first->id)?->payload);
    }

    public function testReplaceSupersedesAHolderThatAWorkerRuns(): void
    {
        $client = $this->client();
        $queue = $this->queueName('network');
        $worker = $this->worker($queue);
        $running = $client->dispatch($queue, ['v' => 1], ['key' => 'room-301']);
        $this->assertSame($running->id, $worker->reserve()[0] ?? null);

        $new = $client->dispatch($queue, ['v' => 2], ['key' => 'room-301', 'replace' => true]);

        $this->assertNotSame($running->id, $new->id);
        $this->assertSame($running->id, $new->superseded);
        $this->assertTrue($new->isNew());
        $this->assertSame('room-301', $new->key);
        $this->assertSame(TaskState::Reserved, $client->task($running->id)?->state);
    }

    public function testOnConflictCanBeGivenAsTheServerNamesIt(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $first = $client->dispatch($queue, 1, ['key' => 'k']);
        $second = $client->dispatch($queue, 2, ['key' => 'k', 'on_conflict' => 'replace']);

        $this->assertSame($first->id, $second->id);
        $this->assertTrue($second->replaced);
        $this->expectException(\InvalidArgumentException::class);
        $client->dispatch($queue, 3, ['key' => 'k', 'on_conflict' => 'replace', 'replace' => true]);
    }

    public function testRawPayloadIsSentAsBytes(): void
    {
        $queue = $this->queueName('bytes');
        $worker = $this->worker($queue);
        $client = $this->client();
        $bytes = "\x00\xff\r\nnot JSON \xc3\x28";
        $task = $client->dispatch($queue, $bytes, ['raw' => true]);

        $this->assertTrue($task->raw);
        $this->assertSame($bytes, $task->payload);
        $this->assertSame($bytes, $client->task($task->id)?->payload);
        $this->assertSame([$task->id, $bytes], $worker->reserve());
    }

    public function testRawNeedsAString(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->dispatch($this->queueName(), ['a' => 1], ['raw' => true]);
    }

    public function testAPayloadThatIsNotUtf8NeedsRaw(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('raw');
        $this->client()->dispatch($this->queueName(), "\xff\xfe");
    }

    public function testNullOptionsAreNotSent(): void
    {
        $task = $this->client()->dispatch($this->queueName(), 'x', ['delay' => null, 'key' => null, 'replace' => null, 'priority' => 7]);

        $this->assertSame(TaskState::Ready, $task->state);
        $this->assertNull($task->key);
        $this->assertSame(7, $task->priority);
    }

    public function testAMisspeltOptionIsRefusedByTheServer(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatch($this->queueName(), 'x', ['dealy' => 60]));

        $this->assertServerError($e, 400, 'unknown_field', "unknown field 'dealy'");
    }

    public function testAValueOutOfRangeIsRefusedByTheServer(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatch($this->queueName(), 'x', ['priority' => -1]));

        $this->assertServerError($e, 400, 'invalid_field', 'priority must be an integer');
    }

    public function testReplaceWithoutAKeyIsRefusedByTheServer(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatch($this->queueName(), 'x', ['replace' => true]));

        $this->assertServerError($e, 400, 'invalid_field', 'on_conflict needs a key');
    }

    public function testAnInvalidQueueNameIsRefusedByTheServer(): void
    {
        $client = $this->client();
        $e = $this->expectThrown(ValidationException::class, fn () => $client->dispatch('-bad name', 'x'));

        $this->assertServerError($e, 400, 'invalid_field', 'invalid queue name');
    }

    public function testThePayloadIsNotAnOption(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->dispatch($this->queueName(), 'x', ['payload' => 'y']);
    }

    public function testQueueNamesWithSlashesAndParentheses(): void
    {
        $client = $this->client();
        $queue = 'app/mail(' . bin2hex(random_bytes(3)) . ');$x';
        $task = $client->dispatch($queue, 'x', ['key' => 'a/b c']);

        $this->assertSame($queue, $task->queue);
        $this->assertSame($queue, $client->queue($queue)?->name);
        $this->assertSame($task->id, $client->cancelKey($queue, 'a/b c')?->id);
    }

    private static function millis(?\DateTimeInterface $t): int
    {
        self::assertNotNull($t);

        return (int) $t->format('Uv');
    }
}
