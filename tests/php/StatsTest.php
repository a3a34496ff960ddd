<?php
// stats, stats-job, stats-tube: the keys beanstalkd 1.12 sends, in its
// order, and their values after known sequences of commands.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\ServerException;
use Pheanstalk\Pheanstalk;

final class StatsTest extends TestCase
{
    private const STATS_KEYS = [
        'current-jobs-urgent', 'current-jobs-ready', 'current-jobs-reserved',
        'current-jobs-delayed', 'current-jobs-buried', 'cmd-put', 'cmd-peek',
        'cmd-peek-ready', 'cmd-peek-delayed', 'cmd-peek-buried', 'cmd-reserve',
        'cmd-reserve-with-timeout', 'cmd-delete', 'cmd-release', 'cmd-use',
        'cmd-watch', 'cmd-ignore', 'cmd-bury', 'cmd-kick', 'cmd-touch', 'cmd-stats',
        'cmd-stats-job', 'cmd-stats-tube', 'cmd-list-tubes', 'cmd-list-tube-used',
        'cmd-list-tubes-watched', 'cmd-pause-tube', 'job-timeouts', 'total-jobs',
        'max-job-size', 'current-tubes', 'current-connections', 'current-producers',
        'current-workers', 'current-waiting', 'total-connections', 'pid', 'version',
        'rusage-utime', 'rusage-stime', 'uptime', 'binlog-oldest-index',
        'binlog-current-index', 'binlog-records-migrated', 'binlog-records-written',
        'binlog-max-size', 'draining', 'id', 'hostname', 'os', 'platform',
    ];
    private const JOB_KEYS = [
        'id', 'tube', 'state', 'pri', 'age', 'delay', 'ttr', 'time-left', 'file',
        'reserves', 'timeouts', 'releases', 'buries', 'kicks',
    ];
    private const TUBE_KEYS = [
        'name', 'current-jobs-urgent', 'current-jobs-ready', 'current-jobs-reserved',
        'current-jobs-delayed', 'current-jobs-buried', 'total-jobs', 'current-using',
        'current-watching', 'current-waiting', 'cmd-delete', 'cmd-pause-tube', 'pause',
        'pause-time-left',
    ];

    public function testStatsHasBeanstalkdKeysInOrder(): void
    {
        $this->assertSame(self::STATS_KEYS, array_keys($this->client()->stats()->getArrayCopy()));
    }

    public function testStatsJobHasBeanstalkdKeysInOrder(): void
    {
        $p = $this->clientOnTube();
        $job = $p->put('x');
        $this->assertSame(self::JOB_KEYS, array_keys($p->statsJob($job)->getArrayCopy()));
    }

    public function testStatsTubeHasBeanstalkdKeysInOrder(): void
    {
        $p = $this->clientOnTube($tube);
        $this->assertSame(self::TUBE_KEYS, array_keys($p->statsTube($tube)->getArrayCopy()));
    }

    public function testServerDescriptionValues(): void
    {
        $raw = $this->client()->stats()->getArrayCopy();
        $s = self::ints($raw);
        $this->assertSame(self::server()->pid, $s['pid']);
        $this->assertSame(65535, $s['max-job-size']);
        $this->assertMatchesRegularExpression('/^"[^"\s]+"$/', $s['version']);
        $this->assertMatchesRegularExpression('/^\d+\.\d{6}$/', $s['rusage-utime']);
        $this->assertMatchesRegularExpression('/^\d+\.\d{6}$/', $s['rusage-stime']);
        $this->assertIsInt($s['uptime']);
        $this->assertGreaterThanOrEqual(0, $s['uptime']);
        $this->assertSame('false', $s['draining']);
        $this->assertMatchesRegularExpression('/^[0-9a-f]{16}$/', $raw['id']);
        $this->assertSame(gethostname(), $raw['hostname']);
        $this->assertSame(php_uname('v'), $raw['os']);
        $this->assertSame(php_uname('m'), $raw['platform']);
        // Without a binlog, beanstalkd reports zero indexes and records.
        foreach (['binlog-oldest-index', 'binlog-current-index', 'binlog-records-migrated',
                  'binlog-records-written'] as $k) {
            $this->assertSame(0, $s[$k], $k);
        }
        // The id stays the same for the life of the server.
        $this->assertSame($raw['id'], $this->client()->stats()['id']);
    }

    public function testBinlogMaxSizeIsTheDefaultWithoutABinlog(): void
    {
        // beanstalkd 1.12 reports its -s default (10485760) even when it
        // keeps no binlog.
        $this->assertSame(10485760, $this->stats()['binlog-max-size']);
    }

    public function testCommandCounters(): void
    {
        $observer = $this->client();
        $before = $this->stats($observer);

        $p = $this->client();
        $tube = $this->tube();
        $p->useTube($tube);                          // use
        $p->watch($tube);                            // watch
        $p->ignore('default');                       // ignore
        $a = $p->put('a');                           // put
        $b = $p->put('b', 1024, 3600);               // put
        $p->peek($a);                                // peek
        $p->peekReady();                             // peek-ready
        $p->peekDelayed();                           // peek-delayed
        $p->peekBuried();                            // peek-buried
        $job = $p->reserve();                        // reserve
        $p->touch($job);                             // touch
        $p->release($job);                           // release
        $job = $p->reserveWithTimeout(0);            // reserve-with-timeout
        $p->bury($job);                              // bury
        $p->kick(1);                                 // kick
        $p->kickJob($b);                             // kick-job: no counter of its own
        $p->statsJob($a);                            // stats-job
        $p->statsTube($tube);                        // stats-tube
        $p->listTubes();                             // list-tubes
        $p->listTubeUsed(true);                      // list-tube-used
        $p->listTubesWatched(true);                  // list-tubes-watched
        $p->pauseTube($tube, 0);                     // pause-tube
        $p->delete($a);                              // delete
        $p->delete($b);                              // delete

        $after = $this->stats($observer);
        $expect = [
            'cmd-put' => 2, 'cmd-peek' => 1, 'cmd-peek-ready' => 1, 'cmd-peek-delayed' => 1,
            'cmd-peek-buried' => 1, 'cmd-reserve' => 1, 'cmd-reserve-with-timeout' => 1,
            'cmd-delete' => 2, 'cmd-release' => 1, 'cmd-use' => 1, 'cmd-watch' => 1,
            'cmd-ignore' => 1, 'cmd-bury' => 1, 'cmd-kick' => 1, 'cmd-touch' => 1,
            'cmd-stats' => 1, 'cmd-stats-job' => 1, 'cmd-stats-tube' => 1,
            'cmd-list-tubes' => 1, 'cmd-list-tube-used' => 1, 'cmd-list-tubes-watched' => 1,
            'cmd-pause-tube' => 1, 'total-jobs' => 2, 'job-timeouts' => 0,
        ];
        $got = [];
        foreach ($expect as $k => $_) {
            $got[$k] = $after[$k] - $before[$k];
        }
        $this->assertSame($expect, $got);
        $this->assertSame(2, $this->tubeStats($tube, $observer)['cmd-delete']);
    }

    public function testJobCountersServerWideAndPerTube(): void
    {
        $observer = $this->client();
        $before = $this->stats($observer);
        $p = $this->clientOnTube($tube);
        $p->put('urgent ready', 0);
        $p->put('urgent to reserve', 1023);
        $p->put('normal ready', 1024);
        $p->put('delayed', 0, 3600);
        $p->put('to bury', 2000);
        $reserved = $p->reserve();            // 'urgent ready' (pri 0)
        $p->reserve();                        // 'urgent to reserve'
        $p->reserve();                        // 'normal ready'
        $toBury = $p->reserve();              // 'to bury'
        $p->bury($toBury);
        $p->release($reserved, 0, 0);         // back to ready, urgent

        // Now: ready = {pri 0}, reserved = {pri 1023, pri 1024},
        // delayed = {pri 0}, buried = {pri 2000}.
        $t = $this->tubeStats($tube, $observer);
        $this->assertSame([
            'name' => $tube,
            'current-jobs-urgent' => 1,
            'current-jobs-ready' => 1,
            'current-jobs-reserved' => 2,
            'current-jobs-delayed' => 1,
            'current-jobs-buried' => 1,
            'total-jobs' => 5,
            'current-using' => 1,
            'current-watching' => 1,
            'current-waiting' => 0,
            'cmd-delete' => 0,
            'cmd-pause-tube' => 0,
            'pause' => 0,
            'pause-time-left' => 0,
        ], $t);

        $after = $this->stats($observer);
        $delta = [];
        foreach (['current-jobs-urgent', 'current-jobs-ready', 'current-jobs-reserved',
                  'current-jobs-delayed', 'current-jobs-buried', 'total-jobs'] as $k) {
            $delta[$k] = $after[$k] - $before[$k];
        }
        $this->assertSame([
            'current-jobs-urgent' => 1, 'current-jobs-ready' => 1, 'current-jobs-reserved' => 2,
            'current-jobs-delayed' => 1, 'current-jobs-buried' => 1, 'total-jobs' => 5,
        ], $delta);
    }

    public function testConnectionCounters(): void
    {
        $observer = $this->client();
        $base = $this->stats($observer);

        $p = $this->clientOnTube();     // use + watch + ignore: connected
        $s = $this->stats($observer);
        $this->assertSame($base['current-connections'] + 1, $s['current-connections']);
        $this->assertSame($base['total-connections'] + 1, $s['total-connections']);
        $this->assertSame($base['current-producers'], $s['current-producers']);
        $this->assertSame($base['current-workers'], $s['current-workers']);

        $p->put('x');
        $this->assertSame($base['current-producers'] + 1, $this->stats($observer)['current-producers']);
        $p->reserveWithTimeout(0);
        $this->assertSame($base['current-workers'] + 1, $this->stats($observer)['current-workers']);

        // Closing the connection takes it out of every count. The close is
        // seen by the server at some point after the client's close():
        // poll for it rather than expecting it at once.
        unset($p);
        gc_collect_cycles();
        $this->waitFor(function () use ($observer, $base) {
            $s = $this->stats($observer);
            return $s['current-connections'] === $base['current-connections']
                && $s['current-producers'] === $base['current-producers']
                && $s['current-workers'] === $base['current-workers'];
        }, 'connection, producer and worker counts to drop after the close');
        $this->assertSame($base['total-connections'] + 1, $this->stats($observer)['total-connections']);
    }

    public function testStatsJobAges(): void
    {
        $p = $this->clientOnTube();
        $job = $p->put('aging');
        $this->waitFor(function () use ($p, $job) {
            return $this->jobStats($p, $job)['age'] >= 1;
        }, 'job age to reach 1 s');
        $this->assertSame('ready', $this->jobStats($p, $job)['state']);
    }

    public function testStatsTubeOfUnknownTubeIsNotFound(): void
    {
        $this->expectException(ServerException::class);
        $this->expectExceptionMessage('NOT_FOUND');
        $this->client()->statsTube($this->tube('nobody'));
    }

    public function testStatsTubeOfDefault(): void
    {
        $s = $this->tubeStats('default');
        $this->assertSame('default', $s['name']);
        $this->assertGreaterThanOrEqual(1, $s['current-watching']);
    }
}
