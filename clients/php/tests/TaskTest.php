<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Task;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;

/** task() and tasks(): a task through its life, as the server reports it. */
final class TaskTest extends ClientTestCase
{
    public function testTaskAnswersTheLiveTask(): void
    {
        $client = $this->client();
        $dispatched = $client->dispatch($this->queueName(), ['a' => [1, 2]], ['key' => 'k', 'priority' => 3]);
        $task = $client->task($dispatched->id);

        $this->assertInstanceOf(Task::class, $task);
        $this->assertSame($dispatched->id, $task->id);
        $this->assertSame($dispatched->queue, $task->queue);
        $this->assertSame(['a' => [1, 2]], $task->payload);
        $this->assertSame('k', $task->key);
        $this->assertSame(3, $task->priority);
        $this->assertEquals($dispatched->createdAt, $task->createdAt);
        $this->assertFalse($task->deduplicated, 'only an enqueue answer says what the enqueue did');
    }

    public function testTaskIsNullForAnUnknownId(): void
    {
        $this->assertNull($this->client()->task(PHP_INT_MAX));
    }

    public function testTaskIdsArePositive(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->client()->task(0);
    }

    public function testADoneTaskIsFinishedWithoutItsPayload(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $id = $client->dispatch($queue, 'work')->id;
        [$reserved] = $worker->reserve();
        $this->assertSame($id, $reserved);

        $running = $client->task($id);
        $this->assertSame(TaskState::Reserved, $running?->state);
        $this->assertSame(1, $running->attempts);
        $this->assertTrue($running->isPending());

        $worker->delete($id);
        $done = $client->task($id);
        $this->assertSame(TaskState::Done, $done?->state);
        $this->assertTrue($done->isFinished());
        $this->assertFalse($done->isPending());
        $this->assertNotNull($done->finishedAt);
        $this->assertGreaterThanOrEqual($done->createdAt, $done->finishedAt);
        $this->assertFalse($done->hasPayload);
        $this->assertNull($done->payload);
    }

    public function testAFailedTaskAndItsLastError(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $id = $client->dispatch($queue, 'flaky', ['max_attempts' => 1])->id;
        $worker->reserve();
        $worker->release($id);

        $failed = $client->task($id);
        $this->assertSame(TaskState::Failed, $failed?->state);
        $this->assertTrue($failed->isFinished());
        $this->assertStringContainsString('released by a worker', (string) $failed->lastError);
        $this->assertSame(1, $client->queue($queue)?->failed);

        $this->assertSame(1, $client->kick($queue));
        $this->assertSame(TaskState::Ready, $client->task($id)?->state);
    }

    public function testABuriedTask(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $worker = $this->worker($queue);
        $id = $client->dispatch($queue, 'x')->id;
        $worker->reserve();
        $worker->bury($id);

        $buried = $client->task($id);
        $this->assertSame(TaskState::Buried, $buried?->state);
        $this->assertFalse($buried->isFinished());
    }

    public function testTasksPagesThroughOneStateInIdOrder(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $ready = $client->dispatchMany($queue, ['a', 'b', 'c', 'd', 'e']);
        $client->dispatch($queue, 'later', ['delay' => 600]);

        $listed = iterator_to_array($client->tasks($queue, TaskState::Ready, true, 2));
        $this->assertSame([0, 1, 2, 3, 4], array_keys($listed));
        $this->assertSame(array_map(static fn (Task $t) => $t->id, $ready), array_map(static fn (Task $t) => $t->id, $listed));
        $this->assertSame(['a', 'b', 'c', 'd', 'e'], array_map(static fn (Task $t) => $t->payload, $listed));

        $withoutPayload = iterator_to_array($client->tasks($queue, 'delayed'), false);
        $this->assertCount(1, $withoutPayload);
        $this->assertFalse($withoutPayload[0]->hasPayload);

        $this->assertSame([], iterator_to_array($client->tasks($this->queueName('none'), 'ready'), false));
    }
}
