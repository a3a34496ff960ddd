<?php
// use, watch, ignore, list-tubes, list-tube-used, list-tubes-watched,
// tube names, pause-tube.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\ServerBadFormatException;
use Pheanstalk\Exception\ServerException;

final class TubesTest extends TestCase
{
    public function testUseTube(): void
    {
        $p = $this->client();
        $this->assertSame('default', $p->listTubeUsed(true));
        $tube = $this->tube();
        $p->useTube($tube);
        $this->assertSame($tube, $p->listTubeUsed(true));
        $job = $p->put('x');
        $this->assertSame($tube, $this->jobStats($p, $job)['tube']);
        $this->assertSame(1, $this->tubeStats($tube)['current-using']);
    }

    public function testWatchAndIgnore(): void
    {
        $p = $this->client();
        $this->assertSame(['default'], $p->listTubesWatched(true));
        $a = $this->tube('a');
        $b = $this->tube('b');
        $c = $this->tube('c');
        $p->watch($a)->watch($b)->watch($c);
        $this->assertSame(['default', $a, $b, $c], $p->listTubesWatched(true));
        $this->assertSame(1, $this->tubeStats($b)['current-watching']);
        // beanstalkd fills the hole an ignored tube leaves with the last one.
        $p->ignore('default');
        $this->assertSame([$c, $a, $b], $p->listTubesWatched(true));
        $p->watchOnly($b);
        $this->assertSame([$b], $p->listTubesWatched(true));
        $this->assertSame(1, $this->tubeStats($b, $p)['current-watching']);
    }

    public function testIgnoringTheLastWatchedTubeIsRefused(): void
    {
        $p = $this->client();
        try {
            $p->ignore('default');
            $this->fail('ignored the only watched tube');
        } catch (ServerException $e) {
            $this->assertStringContainsString('NOT_IGNORED', $e->getMessage());
        }
        $this->assertSame(['default'], $p->listTubesWatched(true));
    }

    public function testListTubesShowsTubesInUseAndForgetsUnusedEmptyOnes(): void
    {
        $used = $this->tube('used');
        $watched = $this->tube('watched');
        $p = $this->client();
        $p->useTube($used)->watch($watched);
        $tubes = $p->listTubes();
        $this->assertContains('default', $tubes);
        $this->assertContains($used, $tubes);
        $this->assertContains($watched, $tubes);

        // Nobody uses or watches them and they hold no job: they go away.
        $p->useTube('default')->ignore($watched);
        $tubes = $p->listTubes();
        $this->assertNotContains($used, $tubes);
        $this->assertNotContains($watched, $tubes);
    }

    public function testTubeHoldingJobsOutlivesItsUsers(): void
    {
        $tube = $this->tube();
        $p = $this->client();
        $job = $p->useTube($tube)->put('keeps the tube');
        $p->useTube('default');
        $this->assertContains($tube, $p->listTubes());
        $this->assertSame(1, $this->tubeStats($tube)['current-jobs-ready']);
        $p->delete($job);
        $this->assertNotContains($tube, $p->listTubes());
        $this->expectException(ServerException::class);
        $p->statsTube($tube);
    }

    public function testCurrentTubesCountsTubes(): void
    {
        $p = $this->client();
        $before = $this->stats($p)['current-tubes'];
        $p->useTube($this->tube('one'))->watch($this->tube('two'));
        $this->assertSame($before + 2, $this->stats($p)['current-tubes']);
    }

    public function testTubeNamesWithEveryAllowedCharacter(): void
    {
        $names = [
            'AZaz09-+/;.$_()' . getmypid(),
            str_repeat('n', 200),
            '(' . getmypid() . ')',
        ];
        foreach ($names as $name) {
            $p = $this->client();
            $p->useTube($name)->watchOnly($name);
            $this->assertSame($name, $p->listTubeUsed(true));
            $this->assertSame([$name], $p->listTubesWatched(true));
            $job = $p->put('named');
            $this->assertSame($name, $this->jobStats($p, $job)['tube']);
            $this->assertSame($name, $this->tubeStats($name)['name']);
            $this->assertContains($name, $p->listTubes());
            $this->assertSame($job->getId(), $p->reserveWithTimeout(0)->getId());
            $p->delete($job);
        }
    }

    /** @return array<string, array{0: string}> */
    public function badTubeNames(): array
    {
        return [
            'too long (201)' => [str_repeat('n', 201)],
            'leading dash' => ['-dash'],
            'space inside' => ['has space'],
            'empty' => [''],
            'star' => ['star*'],
            'non-ascii' => ["caf\xc3\xa9"],
        ];
    }

    /** @dataProvider badTubeNames */
    public function testUseOfBadTubeNameIsBadFormat(string $name): void
    {
        $this->expectException(ServerBadFormatException::class);
        $this->client()->useTube($name);
    }

    /** @dataProvider badTubeNames */
    public function testWatchOfBadTubeNameIsBadFormat(string $name): void
    {
        $p = $this->client();
        try {
            $p->watch($name);
            $this->fail('watch accepted a bad name');
        } catch (ServerBadFormatException $e) {
            $this->addToAssertionCount(1);
        }
        // The connection is still usable and unchanged.
        $p = $this->client();
        $this->assertSame(['default'], $p->listTubesWatched(true));
    }

    public function testPauseTubeHoldsBackReadyJobsUntilResumed(): void
    {
        $p = $this->clientOnTube($tube);
        $job = $p->put('paused');
        $p->pauseTube($tube, 3600);
        $s = $this->tubeStats($tube);
        $this->assertSame(3600, $s['pause']);
        $this->assertGreaterThan(3500, $s['pause-time-left']);
        $this->assertLessThanOrEqual(3600, $s['pause-time-left']);
        $this->assertSame(1, $s['cmd-pause-tube']);
        $this->assertNull($p->reserveWithTimeout(0));
        // Peeking is not affected by the pause.
        $this->assertSame($job->getId(), $p->peekReady()->getId());

        $p->resumeTube($tube);
        $s = $this->tubeStats($tube);
        $this->assertSame(0, $s['pause']);
        $this->assertSame(0, $s['pause-time-left']);
        $this->assertSame(2, $s['cmd-pause-tube']);
        $this->assertSame($job->getId(), $p->reserveWithTimeout(0)->getId());
    }

    public function testPauseEndsByItself(): void
    {
        $p = $this->clientOnTube($tube);
        $job = $p->put('after the pause');
        $p->pauseTube($tube, 1);
        $got = $p->reserveWithTimeout(20);
        $this->assertNotNull($got, 'the pause did not end');
        $this->assertSame($job->getId(), $got->getId());
    }

    public function testPausingAnUnknownTubeIsNotFound(): void
    {
        $this->expectException(ServerException::class);
        $this->expectExceptionMessage('NOT_FOUND');
        $this->client()->pauseTube($this->tube('nobody'), 10);
    }
}
