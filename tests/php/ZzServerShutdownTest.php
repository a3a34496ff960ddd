<?php
// Runs last (files run in name order): stops the shared server with SIGTERM
// and checks that it exits 0 with no sanitizer report on stderr. Should this
// test be filtered out, the bootstrap's exit handler does the same check and
// fails the run.

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

final class ZzServerShutdownTest extends TestCase
{
    public function testServerStopsCleanlyOnSigterm(): void
    {
        $server = self::server();
        $this->assertTrue($server->isRunning(), 'the server died during the run: see ' . $server->stderrPath);
        // A client still connected (and one waiting in reserve) must not
        // stop the shutdown.
        $p = $this->client();
        $p->put('left behind');
        $problems = Harness::stop($server);
        $this->assertSame([], $problems, implode("\n", $problems));
    }
}
