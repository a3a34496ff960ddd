<?php
// Base class: clients for the shared server, per-test tube names, bounded
// polling, and a watchdog so that a server which stops answering fails the
// test instead of hanging the run.

declare(strict_types=1);

namespace Defer\PhpTests;

use Pheanstalk\Connection;
use Pheanstalk\Contract\PheanstalkInterface;
use Pheanstalk\Pheanstalk;
use Pheanstalk\SocketFactory;

abstract class TestCase extends \PHPUnit\Framework\TestCase
{
    /** A test taking longer than this is stuck (server not answering). */
    private const WATCHDOG_S = 120;

    /** @var int */
    private static $tubeSeq = 0;

    protected function setUp(): void
    {
        parent::setUp();
        pcntl_async_signals(true);
        // restart_syscalls=false: a blocked socket read is interrupted, so the
        // handler runs even while pheanstalk waits for a reply.
        pcntl_signal(SIGALRM, static function (): void {
            throw new \RuntimeException('watchdog: test still running after ' . self::WATCHDOG_S
                . ' s; the server stopped answering');
        }, false);
        pcntl_alarm(self::WATCHDOG_S);
    }

    protected function tearDown(): void
    {
        pcntl_alarm(0);
        parent::tearDown();
    }

    protected static function server(): Server
    {
        return Harness::$main;
    }

    protected static function port(): int
    {
        return Harness::$main->port;
    }

    /** A new client (own connection), as an application creates one. */
    protected function client(?Server $server = null): Pheanstalk
    {
        return Pheanstalk::create('127.0.0.1', ($server ?? self::server())->port, 10);
    }

    /**
     * A client plus its Connection, for commands pheanstalk 4 has no method
     * for (dispatched the way pheanstalk dispatches its own).
     *
     * @return array{0: Pheanstalk, 1: Connection}
     */
    protected function clientWithConnection(int $impl = SocketFactory::AUTODETECT): array
    {
        $conn = new Connection(new SocketFactory('127.0.0.1', self::port(), 10, $impl));
        return [new Pheanstalk($conn), $conn];
    }

    /** A tube name no other test uses. */
    protected function tube(string $label = ''): string
    {
        self::$tubeSeq++;
        $name = 'php.' . getmypid() . '.' . self::$tubeSeq . '.' . $this->getName(false) . $label;
        return substr(preg_replace('/[^A-Za-z0-9+\/;.$_()-]/', '_', $name), 0, 200);
    }

    /** A client using and watching (only) a fresh tube. */
    protected function clientOnTube(?string &$tube = null): Pheanstalk
    {
        $tube = $tube ?? $this->tube();
        $p = $this->client();
        $p->useTube($tube)->watchOnly($tube);
        return $p;
    }

    /** Server-wide stats as ints where numeric. */
    protected function stats(?Pheanstalk $p = null): array
    {
        return self::ints(($p ?? $this->client())->stats()->getArrayCopy());
    }

    protected function tubeStats(string $tube, ?Pheanstalk $p = null): array
    {
        return self::ints(($p ?? $this->client())->statsTube($tube)->getArrayCopy());
    }

    protected function jobStats(PheanstalkInterface $p, \Pheanstalk\Contract\JobIdInterface $job): array
    {
        return self::ints($p->statsJob($job)->getArrayCopy());
    }

    protected static function ints(array $a): array
    {
        foreach ($a as $k => $v) {
            if (is_string($v) && preg_match('/^-?\d+$/', $v)) {
                $a[$k] = (int)$v;
            }
        }
        return $a;
    }

    /**
     * Polls $cond until it returns a truthy value (returned) or the bound
     * passes (the test fails). The bound is a hang guard, not a measurement.
     */
    protected function waitFor(callable $cond, string $what, float $boundS = 20.0)
    {
        $deadline = microtime(true) + $boundS;
        do {
            $v = $cond();
            if ($v) {
                return $v;
            }
            usleep(20000);
        } while (microtime(true) < $deadline);
        $this->fail("gave up waiting ($boundS s) for: $what");
    }
}
