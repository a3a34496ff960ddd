<?php
// put (priority, delay, ttr), reserve, reserveWithTimeout, reserve-job.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\JobNotFoundException;
use Pheanstalk\Job;
use Pheanstalk\JobId;
use Pheanstalk\Pheanstalk;

final class PutReserveTest extends TestCase
{
    public function testPutGivesConsecutiveIdsAndDefaultParameters(): void
    {
        $p = $this->clientOnTube($tube);
        $a = $p->put('first');
        $b = $p->put('second');
        $this->assertGreaterThan(0, $a->getId());
        $this->assertSame($a->getId() + 1, $b->getId());
        $this->assertSame('first', $a->getData());

        $s = $this->jobStats($p, $a);
        $this->assertSame($a->getId(), $s['id']);
        $this->assertSame($tube, $s['tube']);
        $this->assertSame('ready', $s['state']);
        $this->assertSame(Pheanstalk::DEFAULT_PRIORITY, $s['pri']);
        $this->assertSame(Pheanstalk::DEFAULT_DELAY, $s['delay']);
        $this->assertSame(Pheanstalk::DEFAULT_TTR, $s['ttr']);
        $this->assertSame(0, $s['time-left']);
        $this->assertSame(0, $s['file']);
        foreach (['reserves', 'timeouts', 'releases', 'buries', 'kicks'] as $k) {
            $this->assertSame(0, $s[$k], $k);
        }
        $this->assertGreaterThanOrEqual(0, $s['age']);
    }

    public function testPutParametersShowInStatsJob(): void
    {
        $p = $this->clientOnTube($tube);
        $a = $p->put('a', 5, 0, 120);
        $s = $this->jobStats($p, $a);
        $this->assertSame(5, $s['pri']);
        $this->assertSame(120, $s['ttr']);
        $this->assertSame('ready', $s['state']);

        $b = $p->put('b', 4294967295, 30, 7);
        $s = $this->jobStats($p, $b);
        $this->assertSame(4294967295, $s['pri']);
        $this->assertSame(30, $s['delay']);
        $this->assertSame(7, $s['ttr']);
        $this->assertSame('delayed', $s['state']);
        // time-left of a delayed job counts down its delay.
        $this->assertGreaterThanOrEqual(0, $s['time-left']);
        $this->assertLessThan(30, $s['time-left']); // whole seconds, rounded down
    }

    public function testTtrZeroIsRaisedToOneSecond(): void
    {
        $p = $this->clientOnTube();
        $job = $p->put('x', 0, 0, 0);
        $this->assertSame(1, $this->jobStats($p, $job)['ttr']);
    }

    public function testReserveTakesLowestPriorityFirstThenOldest(): void
    {
        $p = $this->clientOnTube();
        $c = $p->put('c', 10);
        $a = $p->put('a', 5);
        $b = $p->put('b', 5);
        $z = $p->put('z', 0);
        $got = [];
        while (($j = $p->reserveWithTimeout(0)) !== null) {
            $got[] = [$j->getId(), $j->getData()];
        }
        $this->assertSame([
            [$z->getId(), 'z'],
            [$a->getId(), 'a'],
            [$b->getId(), 'b'],
            [$c->getId(), 'c'],
        ], $got);
    }

    public function testReserveReturnsTheJobAndMarksItReserved(): void
    {
        $p = $this->clientOnTube();
        $put = $p->put('payload', 100, 0, 3600);
        $job = $p->reserve();
        $this->assertInstanceOf(Job::class, $job);
        $this->assertSame($put->getId(), $job->getId());
        $this->assertSame('payload', $job->getData());
        $s = $this->jobStats($p, $job);
        $this->assertSame('reserved', $s['state']);
        $this->assertSame(1, $s['reserves']);
        $this->assertGreaterThan(3500, $s['time-left']);
        $this->assertLessThan(3600, $s['time-left']); // whole seconds, rounded down
        // Nothing else is ready.
        $this->assertNull($p->reserveWithTimeout(0));
    }

    public function testReserveWithTimeoutOnEmptyTubeReturnsNull(): void
    {
        $p = $this->clientOnTube();
        $this->assertNull($p->reserveWithTimeout(0));
        $this->assertNull($p->reserveWithTimeout(1));
    }

    public function testReserveOnlyFromWatchedTubes(): void
    {
        $producer = $this->client();
        $other = $this->tube('other');
        $mine = $this->tube('mine');
        $job = $producer->useTube($other)->put('for other');

        $worker = $this->client();
        $worker->watchOnly($mine);
        $this->assertNull($worker->reserveWithTimeout(0));
        $worker->watch($other);
        $got = $worker->reserveWithTimeout(0);
        $this->assertNotNull($got);
        $this->assertSame($job->getId(), $got->getId());
    }

    public function testJobReservedByOneClientIsInvisibleToAnother(): void
    {
        $a = $this->clientOnTube($tube);
        $b = $this->clientOnTube($tube);
        $a->put('only one');
        $this->assertNotNull($a->reserveWithTimeout(0));
        $this->assertNull($b->reserveWithTimeout(0));
    }

    public function testReserveJobReservesAJobByIdInAnyState(): void
    {
        [$p, $conn] = $this->clientWithConnection();
        $tube = $this->tube();
        $p->useTube($tube);
        $first = $p->put('first');
        $second = $p->put('second');
        $delayed = $p->put('delayed', 1024, 3600);

        // Not the head of the queue: reserve-job takes exactly the job named.
        $r = $conn->dispatchCommand(new ReserveJobCommand($second));
        $this->assertSame('RESERVED', $r->getResponseName());
        $this->assertSame($second->getId(), $r['id']);
        $this->assertSame('second', $r['jobdata']);
        $this->assertSame('reserved', $this->jobStats($p, $second)['state']);
        $this->assertSame('ready', $this->jobStats($p, $first)['state']);

        // Already reserved: NOT_FOUND.
        try {
            $conn->dispatchCommand(new ReserveJobCommand($second));
            $this->fail('reserve-job of a reserved job succeeded');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }

        // A buried job and a delayed one can be reserved by id too.
        $p->bury($second);
        $r = $conn->dispatchCommand(new ReserveJobCommand($second));
        $this->assertSame($second->getId(), $r['id']);
        $this->assertSame('reserved', $this->jobStats($p, $second)['state']);
        $r = $conn->dispatchCommand(new ReserveJobCommand($delayed));
        $this->assertSame('delayed', $r['jobdata']);
        $this->assertSame('reserved', $this->jobStats($p, $delayed)['state']);

        $this->expectException(JobNotFoundException::class);
        $conn->dispatchCommand(new ReserveJobCommand(new JobId($delayed->getId() + 1000000)));
    }

    public function testManyProducersGetDistinctIds(): void
    {
        $tube = $this->tube();
        $clients = [];
        for ($i = 0; $i < 20; $i++) {
            $clients[] = $this->client()->useTube($tube);
        }
        $ids = [];
        for ($round = 0; $round < 5; $round++) {
            foreach ($clients as $i => $c) {
                $ids[] = $c->put("job $round $i")->getId();
            }
        }
        $this->assertCount(100, array_unique($ids));
        $this->assertSame(100, $this->tubeStats($tube)['current-jobs-ready']);

        $worker = $this->client()->watchOnly($tube);
        $seen = [];
        while (($j = $worker->reserveWithTimeout(0)) !== null) {
            $seen[] = $j->getId();
            $worker->delete($j);
        }
        sort($ids);
        $this->assertSame($ids, $seen);
    }
}
