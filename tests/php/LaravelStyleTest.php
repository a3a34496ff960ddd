<?php
// The calls a framework queue driver makes (shaped after Laravel's
// beanstalkd driver on pheanstalk 4): push, later, pop with watchOnly +
// reserveWithTimeout, attempts from stats-job, release with backoff, bury
// on failure, delete, and the queue size from stats-tube.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Contract\JobIdInterface;
use Pheanstalk\Job;
use Pheanstalk\Pheanstalk;

final class LaravelStyleTest extends TestCase
{
    private const TTR = 60;

    /** @var Pheanstalk */
    private $ph;

    protected function setUp(): void
    {
        parent::setUp();
        $this->ph = $this->client();
    }

    private function push(string $queue, array $payload, int $delay = 0): int
    {
        return $this->ph->useTube($queue)
            ->put(json_encode($payload), Pheanstalk::DEFAULT_PRIORITY, $delay, self::TTR)
            ->getId();
    }

    private function pop(string $queue, int $blockFor = 0): ?Job
    {
        return $this->ph->watchOnly($queue)->reserveWithTimeout($blockFor);
    }

    private function size(string $queue): int
    {
        return (int)$this->ph->statsTube($queue)->current_jobs_ready;
    }

    private function attempts(JobIdInterface $job): int
    {
        return (int)$this->ph->statsJob($job)->reserves;
    }

    public function testQueueWorkflow(): void
    {
        $queue = $this->tube();
        $id = $this->push($queue, ['job' => 'SendMail', 'data' => ['to' => 'a@example.org']]);
        $this->push($queue, ['job' => 'Later'], 3600);
        $this->assertSame(1, $this->size($queue));
        $this->assertSame('1', $this->ph->statsTube($queue)->current_jobs_delayed);

        // First attempt fails: released with a backoff.
        $job = $this->pop($queue);
        $this->assertSame($id, $job->getId());
        $this->assertSame('SendMail', json_decode($job->getData(), true)['job']);
        $this->assertSame(1, $this->attempts($job));
        $this->assertSame('1', $this->ph->statsTube($queue)->current_jobs_reserved);
        $this->ph->release($job, Pheanstalk::DEFAULT_PRIORITY, 1);
        $this->assertSame(0, $this->size($queue));
        $this->assertNull($this->pop($queue));

        // The backoff ends; second attempt succeeds.
        $job = $this->pop($queue, 20);
        $this->assertNotNull($job, 'the released job did not come back');
        $this->assertSame($id, $job->getId());
        $this->assertSame(2, $this->attempts($job));
        $this->ph->useTube($queue)->delete($job);
        $this->assertSame(0, $this->size($queue));
    }

    public function testFailedJobIsBuriedAndCanBeRetried(): void
    {
        $queue = $this->tube();
        $id = $this->push($queue, ['job' => 'Fails']);
        $job = $this->pop($queue);
        $this->ph->bury($job);
        $this->assertSame('1', $this->ph->statsTube($queue)->current_jobs_buried);
        $this->assertNull($this->pop($queue));
        // "queue:retry": kick the buried job back.
        $this->ph->useTube($queue);
        $this->assertSame($id, $this->ph->peekBuried()->getId());
        $this->ph->kickJob($this->ph->peekBuried());
        $job = $this->pop($queue);
        $this->assertSame($id, $job->getId());
        $this->assertSame(2, $this->attempts($job));
        $this->ph->delete($job);
    }

    public function testWorkersOnSeveralQueues(): void
    {
        $high = $this->tube('high');
        $low = $this->tube('low');
        $this->push($low, ['n' => 1]);
        $this->push($high, ['n' => 2]);
        $worker = $this->client();
        $worker->watch($high)->watch($low)->ignore('default');
        $seen = [];
        while (($job = $worker->reserveWithTimeout(0)) !== null) {
            $seen[] = json_decode($job->getData(), true)['n'];
            $worker->delete($job);
        }
        // Same priority on both tubes: the older job comes first.
        $this->assertSame([1, 2], $seen);
    }
}
