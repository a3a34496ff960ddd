<?php
// A client's close takes effect before any command the server reads after
// it. beanstalkd handles one socket event at a time, in arrival order, so a
// command another client sends after close() returned finds the closed
// connection gone: its reserved jobs are ready again and it no longer counts
// in stats (pheanstalk's own ConnectionTest::testDisconnect relies on this).
//
// To make the ordering deterministic the server is stopped (SIGSTOP) while
// the client closes and the other client sends its command, then continued:
// both events then wait for the server together.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

final class ConnectionCloseTest extends TestCase
{
    /** Long enough for a command written meanwhile to reach the server's socket. */
    private const STOPPED_S = 0.3;

    public function testJobOfAClosedConnectionIsReadyForCommandsReadAfterTheClose(): void
    {
        $worker = $this->clientOnTube($tube);   // connected before the stop
        [$holder, $conn] = $this->clientWithConnection();
        $holder->useTube($tube)->watchOnly($tube);
        $put = $holder->put('held', 1024, 0, 3600);
        $holder->reserve();

        $helper = null;
        self::server()->pause();
        try {
            $conn->disconnect();
            $helper = self::server()->continueAfter(self::STOPPED_S);
            $job = $worker->reserveWithTimeout(0);
        } finally {
            self::server()->resume($helper);
        }
        $this->assertNotNull($job, 'reserve-with-timeout 0 sent after the holder closed said TIMED_OUT');
        $this->assertSame($put->getId(), $job->getId());
    }

    public function testClosedConnectionIsNotCountedByCommandsReadAfterTheClose(): void
    {
        $observer = $this->client();
        $base = (int)$observer->stats()['current-connections'];
        [$p, $conn] = $this->clientWithConnection();
        $p->useTube($this->tube())->put('producer');
        $s = self::ints($observer->stats()->getArrayCopy());
        $this->assertSame($base + 1, $s['current-connections']);

        $helper = null;
        self::server()->pause();
        try {
            $conn->disconnect();
            $helper = self::server()->continueAfter(self::STOPPED_S);
            $after = self::ints($observer->stats()->getArrayCopy());
        } finally {
            self::server()->resume($helper);
        }
        $this->assertSame($base, $after['current-connections']);
        $this->assertSame($s['current-producers'] - 1, $after['current-producers']);
    }
}
