<?php
// delete, release, bury, kick, kickJob, touch, TTR expiry, DEADLINE_SOON.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\DeadlineSoonException;
use Pheanstalk\Exception\JobNotFoundException;
use Pheanstalk\Exception\ServerException;
use Pheanstalk\JobId;

final class JobLifecycleTest extends TestCase
{
    public function testDeleteRemovesAReservedJob(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('x');
        $job = $p->reserve();
        $p->delete($job);
        $this->assertSame(0, $this->tubeStats($tube)['current-jobs-reserved']);
        $this->assertSame(1, $this->tubeStats($tube)['cmd-delete']);
        try {
            $p->peek($job);
            $this->fail('peek found a deleted job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
        $this->expectException(JobNotFoundException::class);
        $p->delete($job);
    }

    public function testDeleteWorksOnReadyDelayedAndBuriedJobs(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('to bury');
        $buried = $p->reserve();
        $p->bury($buried);
        $ready = $p->put('ready');
        $delayed = $p->put('delayed', 1024, 3600);
        $p->delete($ready);
        $p->delete($delayed);
        $p->delete($buried);
        $s = $this->tubeStats($tube);
        $this->assertSame(0, $s['current-jobs-ready']);
        $this->assertSame(0, $s['current-jobs-delayed']);
        $this->assertSame(0, $s['current-jobs-buried']);
        $this->assertSame(3, $s['cmd-delete']);
    }

    public function testDeleteOfJobReservedByAnotherClientIsNotFound(): void
    {
        $a = $this->clientOnTube($tube);
        $b = $this->clientOnTube($tube);
        $a->put('mine');
        $job = $a->reserve();
        try {
            $b->delete($job);
            $this->fail('another client deleted a reserved job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
        $this->assertSame('reserved', $this->jobStats($b, $job)['state']);
    }

    public function testDeleteOfUnknownIdIsNotFound(): void
    {
        $this->expectException(JobNotFoundException::class);
        $this->client()->delete(new JobId(9999999999));
    }

    public function testReleaseMakesJobReadyWithNewPriority(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('again', 100);
        $job = $p->reserve();
        $p->release($job, 7, 0);
        $s = $this->jobStats($p, $job);
        $this->assertSame('ready', $s['state']);
        $this->assertSame(7, $s['pri']);
        $this->assertSame(1, $s['releases']);
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-ready']);

        $again = $p->reserveWithTimeout(0);
        $this->assertSame($job->getId(), $again->getId());
        $this->assertSame('again', $again->getData());
        $this->assertSame(2, $this->jobStats($p, $again)['reserves']);
    }

    public function testReleaseWithDelayMakesJobDelayed(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('later');
        $job = $p->reserve();
        $p->release($job, 1024, 3600);
        $s = $this->jobStats($p, $job);
        $this->assertSame('delayed', $s['state']);
        $this->assertSame(3600, $s['delay']);
        $this->assertGreaterThan(3500, $s['time-left']);
        $this->assertLessThan(3600, $s['time-left']);
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-delayed']);
        $this->assertNull($p->reserveWithTimeout(0));
        $this->assertSame($job->getId(), $p->peekDelayed()->getId());
    }

    public function testReleaseOfJobNotReservedByThisClientIsNotFound(): void
    {
        $a = $this->clientOnTube($tube);
        $b = $this->clientOnTube($tube);
        $ready = $a->put('ready');
        try {
            $a->release($ready);
            $this->fail('released a ready job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
        $job = $a->reserve();
        $this->expectException(JobNotFoundException::class);
        $b->release($job);
    }

    public function testBuryAndKick(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('bury me', 50);
        $job = $p->reserve();
        $p->bury($job, 3);
        $s = $this->jobStats($p, $job);
        $this->assertSame('buried', $s['state']);
        $this->assertSame(3, $s['pri']);
        $this->assertSame(1, $s['buries']);
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-buried']);
        $this->assertNull($p->reserveWithTimeout(0));
        $this->assertSame($job->getId(), $p->peekBuried()->getId());

        $this->assertSame(1, $p->kick(10));
        $s = $this->jobStats($p, $job);
        $this->assertSame('ready', $s['state']);
        $this->assertSame(1, $s['kicks']);
        $this->assertSame($job->getId(), $p->reserveWithTimeout(0)->getId());
    }

    public function testBuryOfJobNotReservedIsNotFound(): void
    {
        $p = $this->clientOnTube();
        $job = $p->put('ready');
        $this->expectException(JobNotFoundException::class);
        $p->bury($job);
    }

    public function testKickHonoursItsBound(): void
    {
        $p = $this->clientOnTube($tube);
        for ($i = 0; $i < 3; $i++) {
            $p->put("j$i");
            $p->bury($p->reserve());
        }
        $this->assertSame(2, $p->kick(2));
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-buried']);
        $this->assertSame(1, $p->kick(10));
        $this->assertSame(0, $p->kick(10));
        $this->assertSame(3, $this->tubeStats($tube)['current-jobs-ready']);
    }

    public function testKickTakesBuriedJobsBeforeDelayedOnes(): void
    {
        $p = $this->clientOnTube($tube);
        $delayed = $p->put('delayed', 1024, 3600);
        $p->put('buried');
        $buried = $p->reserve();
        $p->bury($buried);

        $this->assertSame(1, $p->kick(10));
        $this->assertSame('ready', $this->jobStats($p, $buried)['state']);
        $this->assertSame('delayed', $this->jobStats($p, $delayed)['state']);

        $this->assertSame(1, $p->kick(10));
        $this->assertSame('ready', $this->jobStats($p, $delayed)['state']);
        $this->assertSame(1, $this->jobStats($p, $delayed)['kicks']);
    }

    public function testKickOnlyAffectsTheUsedTube(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('x');
        $p->bury($p->reserve());
        $p->useTube($this->tube('elsewhere'));
        $this->assertSame(0, $p->kick(10));
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-buried']);
    }

    public function testKickJob(): void
    {
        $p = $this->clientOnTube($tube);
        $delayed = $p->put('delayed', 1024, 3600);
        $p->put('buried');
        $buried = $p->reserve();
        $p->bury($buried);

        $p->kickJob($buried);
        $this->assertSame('ready', $this->jobStats($p, $buried)['state']);
        $p->kickJob($delayed);
        $this->assertSame('ready', $this->jobStats($p, $delayed)['state']);
        $this->assertSame(1, $this->jobStats($p, $delayed)['kicks']);

        // A ready job is not kickable.
        try {
            $p->kickJob($delayed);
            $this->fail('kicked a ready job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
        $this->expectException(JobNotFoundException::class);
        $p->kickJob(new JobId(9999999999));
    }

    public function testTouchRestartsTheTimeToRun(): void
    {
        $p = $this->clientOnTube();
        $p->put('slow work', 1024, 0, 5);
        $job = $p->reserve();
        // time-left is whole seconds rounded down: below the TTR as soon as
        // any time has passed.
        $this->assertLessThan(5, $this->jobStats($p, $job)['time-left']);
        // Let the clock run down, then touch: time-left goes back up.
        $this->waitFor(function () use ($p, $job) {
            return $this->jobStats($p, $job)['time-left'] <= 2;
        }, 'time-left to fall to 2 s');
        $p->touch($job);
        $left = $this->jobStats($p, $job)['time-left'];
        $this->assertGreaterThanOrEqual(3, $left);
        $this->assertLessThan(5, $left);
        $this->assertSame('reserved', $this->jobStats($p, $job)['state']);
    }

    public function testTouchOfJobNotReservedByThisClientIsNotFound(): void
    {
        $a = $this->clientOnTube($tube);
        $b = $this->clientOnTube($tube);
        $ready = $a->put('x');
        try {
            $a->touch($ready);
            $this->fail('touched a ready job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
        $job = $a->reserve();
        $this->expectException(JobNotFoundException::class);
        $b->touch($job);
    }

    /**
     * beanstalkd 1.12 itself sometimes misses this: it may check the TTR a
     * few microseconds before the deadline, find the job not yet expired and
     * not look again until that connection does something else.
     */
    public function testJobComesBackWhenTimeToRunExpires(): void
    {
        $a = $this->clientOnTube($tube);
        $b = $this->clientOnTube($tube);
        $before = $this->stats()['job-timeouts'];
        $a->put('ttr 1', 1024, 0, 1);
        $job = $a->reserve();
        $again = $b->reserveWithTimeout(20);
        $this->assertNotNull($again, 'job did not come back after its TTR');
        $this->assertSame($job->getId(), $again->getId());
        $s = $this->jobStats($b, $again);
        $this->assertSame(1, $s['timeouts']);
        $this->assertSame(2, $s['reserves']);
        $this->assertSame($before + 1, $this->stats()['job-timeouts']);
        // The first worker no longer holds it.
        try {
            $a->delete($job);
            $this->fail('the timed-out worker could still delete the job');
        } catch (JobNotFoundException $e) {
            $this->addToAssertionCount(1);
        }
    }

    public function testReserveSaysDeadlineSoonWhileHoldingAJobAboutToExpire(): void
    {
        $p = $this->clientOnTube();
        $p->put('ttr 1', 1024, 0, 1);
        $p->reserve();
        // TTR 1 s is inside the 1 s safety margin at once; nothing else is
        // ready, so reserve answers DEADLINE_SOON instead of waiting.
        try {
            $p->reserveWithTimeout(10);
            $this->fail('no DEADLINE_SOON from reserve-with-timeout');
        } catch (DeadlineSoonException $e) {
            $this->addToAssertionCount(1);
        }
    }

    public function testWaitingReserveIsWokenWithDeadlineSoon(): void
    {
        $p = $this->clientOnTube();
        $p->put('ttr 3', 1024, 0, 3);
        $p->reserve();
        // Nothing ready: the reserve waits until the held job enters its
        // safety margin, then answers DEADLINE_SOON.
        $this->expectException(DeadlineSoonException::class);
        $p->reserveWithTimeout(30);
    }

    public function testReservedJobIsReleasedWhenItsClientDisconnects(): void
    {
        [$a, $conn] = $this->clientWithConnection();
        $tube = $this->tube();
        $a->useTube($tube)->watchOnly($tube);
        $put = $a->put('orphan', 1024, 0, 3600);
        $job = $a->reserve();
        $conn->disconnect();

        $b = $this->clientOnTube($tube);
        $again = $b->reserveWithTimeout(20);
        $this->assertNotNull($again, 'job of a closed connection was not released');
        $this->assertSame($put->getId(), $again->getId());
        $this->assertSame(2, $this->jobStats($b, $again)['reserves']);
    }

    public function testStatsJobOfUnknownJobThrows(): void
    {
        $this->expectException(ServerException::class);
        $this->client()->statsJob(new JobId(9999999999));
    }
}
