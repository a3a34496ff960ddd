<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Tests\Support\Servers;
use PHPUnit\Framework\TestCase;

/**
 * Runs last (phpunit takes the files in name order): stops the shared server
 * with SIGTERM and fails if it did not exit with status 0 or printed a
 * sanitizer report, so that a server bug the client's requests provoked
 * fails the run visibly rather than only in its exit status.
 */
final class ZzServerShutdownTest extends TestCase
{
    public function testTheSharedServerStopsCleanly(): void
    {
        $problems = Servers::stopShared();

        $this->assertSame([], $problems, implode("\n", $problems));
    }
}
