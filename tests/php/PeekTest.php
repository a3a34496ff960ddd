<?php
// peek by id, peekReady, peekDelayed, peekBuried.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\JobNotFoundException;
use Pheanstalk\JobId;

final class PeekTest extends TestCase
{
    public function testPeekByIdFindsJobsInAnyTubeAndState(): void
    {
        $p = $this->client();
        $tubeA = $this->tube('a');
        $a = $p->useTube($tubeA)->put('in a');
        $b = $p->useTube($this->tube('b'))->put('in b', 1024, 3600);
        // The used tube does not matter for peek by id.
        $p->useTube($this->tube('c'));
        $this->assertSame('in a', $p->peek($a)->getData());
        $this->assertSame($a->getId(), $p->peek($a)->getId());
        $this->assertSame('in b', $p->peek(new JobId($b->getId()))->getData());

        // A job reserved by someone else can still be peeked.
        $w = $this->client()->watchOnly($tubeA);
        $w->reserve();
        $this->assertSame('in a', $p->peek($a)->getData());
    }

    public function testPeekOfUnknownIdIsNotFound(): void
    {
        $this->expectException(JobNotFoundException::class);
        $this->client()->peek(new JobId(9999999999));
    }

    public function testPeekReadyReturnsTheNextJobToBeReserved(): void
    {
        $p = $this->clientOnTube();
        $this->assertNull($p->peekReady());
        $p->put('later', 10);
        $first = $p->put('first', 1);
        $p->put('same pri, newer', 1);
        $peeked = $p->peekReady();
        $this->assertSame($first->getId(), $peeked->getId());
        $this->assertSame('first', $peeked->getData());
        // Peeking reserves nothing.
        $this->assertSame('ready', $this->jobStats($p, $first)['state']);
        $this->assertSame($first->getId(), $p->reserveWithTimeout(0)->getId());
    }

    public function testPeekDelayedReturnsTheJobDueFirst(): void
    {
        $p = $this->clientOnTube();
        $this->assertNull($p->peekDelayed());
        $p->put('in two hours', 1024, 7200);
        $soon = $p->put('in one hour', 1024, 3600);
        $p->put('ready now');
        $peeked = $p->peekDelayed();
        $this->assertSame($soon->getId(), $peeked->getId());
        $this->assertSame('in one hour', $peeked->getData());
    }

    public function testPeekBuriedReturnsTheOldestBuriedJob(): void
    {
        $p = $this->clientOnTube();
        $this->assertNull($p->peekBuried());
        $p->put('one');
        $p->put('two');
        $j1 = $p->reserve();
        $j2 = $p->reserve();
        $p->bury($j2, 0);
        $p->bury($j1, 9);
        // Oldest buried first, whatever the priority.
        $peeked = $p->peekBuried();
        $this->assertSame($j2->getId(), $peeked->getId());
        $this->assertSame('two', $peeked->getData());
    }

    public function testPeekCommandsLookOnlyAtTheUsedTube(): void
    {
        $p = $this->clientOnTube($tube);
        $p->put('ready');
        $p->put('delayed', 1024, 3600);
        $p->put('buried');
        $p->bury($p->reserveWithTimeout(0));
        $p->useTube($this->tube('empty'));
        $this->assertNull($p->peekReady());
        $this->assertNull($p->peekDelayed());
        $this->assertNull($p->peekBuried());
        $p->useTube($tube);
        $this->assertNotNull($p->peekReady());
        $this->assertNotNull($p->peekDelayed());
        $this->assertNotNull($p->peekBuried());
    }
}
