<?php
// Job bodies: binary data, sizes up to the 65535-byte limit, JOB_TOO_BIG,
// every pheanstalk socket implementation, and the -z flag.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\JobTooBigException;
use Pheanstalk\Pheanstalk;
use Pheanstalk\SocketFactory;

final class BodyTest extends TestCase
{
    private const MAX = 65535;

    /** Deterministic pseudo-random bytes (so a failure can be replayed). */
    private static function bytes(int $n, int $seed): string
    {
        mt_srand($seed);
        $s = '';
        for ($i = 0; $i < $n; $i++) {
            $s .= chr(mt_rand(0, 255));
        }
        return $s;
    }

    /** Put, peek and reserve one body; all three must give it back whole. */
    private function roundTrip(Pheanstalk $p, string $body): void
    {
        $put = $p->put($body);
        $peeked = $p->peek($put);
        $this->assertSame(strlen($body), strlen($peeked->getData()));
        $this->assertTrue($body === $peeked->getData(), 'peek returned different bytes');
        $job = $p->reserveWithTimeout(0);
        $this->assertNotNull($job);
        $this->assertSame($put->getId(), $job->getId());
        $this->assertSame(strlen($body), strlen($job->getData()));
        $this->assertTrue($body === $job->getData(), 'reserve returned different bytes');
        $p->delete($job);
    }

    /** @return array<string, array{0: string}> */
    public function oddBodies(): array
    {
        $all = '';
        for ($i = 0; $i < 256; $i++) {
            $all .= chr($i);
        }
        return [
            'empty' => [''],
            'one NUL' => ["\0"],
            'CRLF only' => ["\r\n"],
            'CR only' => ["\r"],
            'LF only' => ["\n"],
            'CRLF CRLF' => ["\r\n\r\n"],
            'every byte value' => [$all],
            'every byte value, reversed' => [strrev($all)],
            'looks like a reply' => ["RESERVED 1 5\r\nhello\r\n"],
            'looks like commands' => ["delete 1\r\nput 0 0 1 1\r\nx\r\nquit\r\n"],
            'trailing CR' => ["abc\r"],
            'leading LF' => ["\nabc"],
            'UTF-8' => ["gr\xc3\xbc\xc3\x9fe \xe2\x9c\x93 \xf0\x9f\x98\x80"],
            'NULs and CRLFs' => [str_repeat("\0\r\n", 1000)],
            'random 4 KiB' => [self::bytes(4096, 1)],
        ];
    }

    /** @dataProvider oddBodies */
    public function testBodyRoundTrips(string $body): void
    {
        $this->roundTrip($this->clientOnTube(), $body);
    }

    public function testLargestAllowedJob(): void
    {
        $p = $this->clientOnTube($tube);
        $body = self::bytes(self::MAX, 2);
        $this->roundTrip($p, $body);
        $body = str_repeat("\r\n", intdiv(self::MAX, 2)) . "\n";
        $this->roundTrip($p, $body);
        $this->assertSame(self::MAX, $this->stats()['max-job-size']);
    }

    /** @return array<string, array{0: int, 1: int}> */
    public function socketsAndSizes(): array
    {
        $cases = [];
        foreach ([SocketFactory::SOCKET, SocketFactory::STREAM, SocketFactory::FSOCKOPEN] as $impl) {
            foreach ([1, 1023, 1024, 8191, 8192, 8193, 16384, 32768, 65534, self::MAX] as $n) {
                $cases["$impl $n"] = [$impl, $n];
            }
        }
        return $cases;
    }

    /** @dataProvider socketsAndSizes */
    public function testBodySizesOverEverySocketImplementation(int $impl, int $n): void
    {
        [$p] = $this->clientWithConnection($impl);
        $tube = $this->tube();
        $p->useTube($tube)->watchOnly($tube);
        $this->roundTrip($p, self::bytes($n, $n));
    }

    public function testJobOneByteTooBigIsRefusedAndTheConnectionStaysInStep(): void
    {
        $p = $this->clientOnTube($tube);
        $before = $this->stats();
        try {
            $p->put(self::bytes(self::MAX + 1, 3));
            $this->fail('a job of 65536 bytes was accepted');
        } catch (JobTooBigException $e) {
            $this->assertStringContainsString('JOB_TOO_BIG', $e->getMessage());
        }
        $after = $this->stats();
        $this->assertSame($before['total-jobs'], $after['total-jobs']);
        $this->assertSame($before['cmd-put'] + 1, $after['cmd-put']);
        $this->assertSame(0, $this->tubeStats($tube)['current-jobs-ready']);

        // The same connection goes on working.
        $next = $p->put('fits');
        $this->assertSame($before['total-jobs'] + 1, $this->stats()['total-jobs']);
        $job = $p->reserveWithTimeout(0);
        $this->assertSame($next->getId(), $job->getId());
        $this->assertSame('fits', $job->getData());
    }

    public function testTooBigBodyIsSkippedNotParsedAsCommands(): void
    {
        $p = $this->clientOnTube($tube);
        $before = $this->stats();
        // A body full of complete commands: none of them may run.
        $cmds = "put 0 0 60 1\r\nx\r\nuse elsewhere\r\n";
        $body = str_repeat($cmds, intdiv(self::MAX, strlen($cmds)) + 1);
        $this->assertGreaterThan(self::MAX, strlen($body));
        try {
            $p->put($body);
            $this->fail('an oversized job was accepted');
        } catch (JobTooBigException $e) {
            $this->addToAssertionCount(1);
        }
        $this->assertSame($tube, $p->listTubeUsed(true));
        $this->assertSame($before['total-jobs'], $this->stats()['total-jobs']);
        $this->assertSame(0, $this->tubeStats($tube)['current-jobs-ready']);
        $this->assertSame($before['cmd-use'], $this->stats()['cmd-use']);
    }

    public function testMuchTooBigJobIsRefused(): void
    {
        $p = $this->clientOnTube($tube);
        try {
            $p->put(str_repeat('z', 1 << 20));
            $this->fail('a 1 MiB job was accepted');
        } catch (JobTooBigException $e) {
            $this->addToAssertionCount(1);
        }
        $this->roundTrip($p, 'after the big one');
    }

    public function testMaxJobSizeFlag(): void
    {
        $server = Harness::startExtra(['-z', '100']);
        try {
            $p = $this->client($server);
            $this->assertSame('100', $p->stats()['max-job-size']);
            $this->roundTrip($p, str_repeat('m', 100));
            try {
                $p->put(str_repeat('m', 101));
                $this->fail('-z 100 accepted 101 bytes');
            } catch (JobTooBigException $e) {
                $this->addToAssertionCount(1);
            }
            $this->roundTrip($p, 'still in step');
        } finally {
            unset($p);
            $problems = Harness::stop($server);
        }
        $this->assertSame([], $problems, implode("\n", $problems));
    }
}
