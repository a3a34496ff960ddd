<?php
// A reserve that waits, woken by: a put, a put to another watched tube, a
// release, a job's delay ending, a pause ending, the holder disconnecting.
// The waiting side runs in a separate process (lib/reserve_worker.php).

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\ServerException;

final class BlockingReserveTest extends TestCase
{
    /** Waits (bounded) until $n clients wait on $tube. */
    private function waitForWaiters(string $tube, int $n): void
    {
        $this->waitFor(function () use ($tube, $n) {
            try {
                return $this->tubeStats($tube)['current-waiting'] === $n;
            } catch (ServerException $e) {
                return false; // the worker has not watched the tube yet
            }
        }, "$n waiting reserve(s) on $tube");
    }

    public function testBlockingReserveIsWokenByAPut(): void
    {
        $tube = $this->tube();
        $before = $this->stats()['current-waiting'];
        $w = new Worker(self::port(), [$tube], 'reserve');
        $this->waitForWaiters($tube, 1);
        $this->assertSame($before + 1, $this->stats()['current-waiting']);

        $p = $this->client()->useTube($tube);
        $put = $p->put('wake up');
        $r = $w->result();
        $this->assertNotNull($r, 'the waiting reserve was not answered');
        $this->assertSame($put->getId(), $r['id']);
        $this->assertSame('wake up', base64_decode($r['data']));
        $this->assertSame('reserved', $this->jobStats($p, $put)['state']);
        $this->assertSame(0, $this->tubeStats($tube)['current-waiting']);
        $this->assertSame($before, $this->stats()['current-waiting']);

        // The worker goes away without deleting: the job is ready again.
        $w->close();
        $this->waitFor(function () use ($p, $put) {
            return $this->jobStats($p, $put)['state'] === 'ready';
        }, 'the job of the closed worker to be ready again');
    }

    public function testWaitingReserveIsWokenByAPutToAnyWatchedTube(): void
    {
        $t1 = $this->tube('one');
        $t2 = $this->tube('two');
        $w = new Worker(self::port(), [$t1, $t2], '30');
        $this->waitForWaiters($t2, 1);
        $this->assertSame(1, $this->tubeStats($t1)['current-waiting']);
        $put = $this->client()->useTube($t2)->put('on the second tube');
        $r = $w->result();
        $this->assertNotNull($r);
        $this->assertSame($put->getId(), $r['id'] ?? null);
        $this->assertSame(0, $this->tubeStats($t1)['current-waiting']);
    }

    public function testTwoWaitersEachGetOneJob(): void
    {
        $tube = $this->tube();
        $w1 = new Worker(self::port(), [$tube], '30');
        $w2 = new Worker(self::port(), [$tube], '30');
        $this->waitForWaiters($tube, 2);
        $p = $this->client()->useTube($tube);
        $a = $p->put('a');
        $this->waitForWaiters($tube, 1);
        $b = $p->put('b');
        $got = [$w1->result()['id'] ?? null, $w2->result()['id'] ?? null];
        sort($got);
        $this->assertSame([$a->getId(), $b->getId()], $got);
    }

    public function testWaitingReserveTimesOut(): void
    {
        $tube = $this->tube();
        $w = new Worker(self::port(), [$tube], '1');
        $this->assertSame(['timed_out' => true], $w->result());
        $this->assertSame(0, $this->tubeStats($tube)['current-waiting']);
    }

    public function testWaitingReserveIsWokenByARelease(): void
    {
        $holder = $this->clientOnTube($tube);
        $put = $holder->put('released to you');
        $job = $holder->reserve();
        $w = new Worker(self::port(), [$tube], '30');
        $this->waitForWaiters($tube, 1);
        $holder->release($job);
        $this->assertSame($put->getId(), $w->result()['id'] ?? null);
    }

    public function testWaitingReserveGetsTheJobOfAClientThatDisconnects(): void
    {
        [$holder, $conn] = $this->clientWithConnection();
        $tube = $this->tube();
        $holder->useTube($tube)->watchOnly($tube);
        $put = $holder->put('orphaned', 1024, 0, 3600);
        $holder->reserve();
        $w = new Worker(self::port(), [$tube], '30');
        $this->waitForWaiters($tube, 1);
        $conn->disconnect();
        $r = $w->result();
        $this->assertSame($put->getId(), $r['id'] ?? null, json_encode($r));
    }

    public function testWaitingReserveGetsADelayedJobWhenItsDelayEnds(): void
    {
        $p = $this->clientOnTube();
        $put = $p->put('in a second', 1024, 1);
        $this->assertNull($p->reserveWithTimeout(0));
        $job = $p->reserveWithTimeout(20);
        $this->assertNotNull($job, 'the delayed job never became ready');
        $this->assertSame($put->getId(), $job->getId());
    }

    public function testWaitingReserveIsWokenWhenThePauseEnds(): void
    {
        $tube = $this->tube();
        $p = $this->client()->useTube($tube);
        $put = $p->put('paused');
        $p->pauseTube($tube, 3);
        $w = new Worker(self::port(), [$tube], '30');
        $this->waitForWaiters($tube, 1);
        $this->assertSame($put->getId(), $w->result()['id'] ?? null);
    }
}
