<?php
// Protocol errors as pheanstalk reports them: UNKNOWN_COMMAND, BAD_FORMAT,
// EXPECTED_CRLF, DRAINING (SIGUSR1).

declare(strict_types=1);

namespace Defer\PhpTests;

require_once __DIR__ . '/bootstrap.php';

use Pheanstalk\Exception\ClientBadFormatException;
use Pheanstalk\Exception\ServerBadFormatException;
use Pheanstalk\Exception\ServerDrainingException;
use Pheanstalk\Exception\ServerUnknownCommandException;

final class ErrorsTest extends TestCase
{
    public function testUnknownCommand(): void
    {
        [$p, $conn] = $this->clientWithConnection();
        try {
            $conn->dispatchCommand(new RawCommand('frobnicate 1 2 3'));
            $this->fail('an unknown command was accepted');
        } catch (ServerUnknownCommandException $e) {
            $this->addToAssertionCount(1);
        }
        // Still in step.
        $this->assertSame('default', $p->listTubeUsed(true));
    }

    public function testPriorityAboveThirtyTwoBitsIsBadFormat(): void
    {
        $p = $this->clientOnTube($tube);
        try {
            $p->put('x', 4294967296);
            $this->fail('priority 2^32 was accepted');
        } catch (ServerBadFormatException $e) {
            $this->addToAssertionCount(1);
        }
        // beanstalkd does not skip the body of a put it could not parse: the
        // body line "x" is read as a command and answered UNKNOWN_COMMAND,
        // which the client sees as the reply to its next command.
        try {
            $p->listTubeUsed(true);
            $this->fail('the body line of the refused put was not answered UNKNOWN_COMMAND');
        } catch (ServerUnknownCommandException $e) {
            $this->addToAssertionCount(1);
        }
        $this->assertSame($tube, $p->listTubeUsed(true)); // the reply to the previous one
        $this->assertSame($tube, $p->listTubeUsed(true));
        $this->assertSame(0, $this->tubeStats($tube)['current-jobs-ready']);
    }

    public function testMalformedCommandLinesAreBadFormat(): void
    {
        [$p, $conn] = $this->clientWithConnection();
        foreach (['delete ', 'delete x', 'release 1 2', 'bury x 1', 'peek -1', 'touch 1 2',
                  'stats-job', 'kick-job x', 'list-tubes now'] as $line) {
            try {
                $r = $conn->dispatchCommand(new RawCommand($line));
                $this->fail("'$line' answered " . $r['line']);
            } catch (ServerBadFormatException $e) {
                $this->addToAssertionCount(1);
            }
        }
        $this->assertSame('default', $p->listTubeUsed(true));
    }

    public function testBodyShorterThanAnnouncedIsExpectedCrlf(): void
    {
        [$p, $conn] = $this->clientWithConnection();
        $tube = $this->tube();
        $p->useTube($tube);
        // "put 0 0 60 3\r\nabcXY\r\n": the server takes "abc" + "XY" as body
        // and trailer, answers EXPECTED_CRLF, then reads the final "\r\n" as
        // an empty command line: UNKNOWN_COMMAND.
        try {
            $conn->dispatchCommand(new RawCommand('put 0 0 60 3', 'abcXY'));
            $this->fail('a body without its CRLF was accepted');
        } catch (ClientBadFormatException $e) {
            $this->assertStringContainsString('EXPECTED_CRLF', $e->getMessage());
        }
        $r = null;
        try {
            $r = $conn->dispatchCommand(new RawCommand('list-tube-used'));
        } catch (ServerUnknownCommandException $e) {
            $this->addToAssertionCount(1);
        }
        $this->assertNull($r, 'the empty line after the body was not answered UNKNOWN_COMMAND');
        // The reply to list-tube-used comes next.
        $r = $conn->dispatchCommand(new RawCommand('list-tube-used'));
        $this->assertSame("USING $tube", $r['line']);
        $r = $conn->dispatchCommand(new RawCommand('list-tube-used'));
        $this->assertSame("USING $tube", $r['line']);
        $this->assertSame(0, $this->tubeStats($tube)['current-jobs-ready']);
    }

    public function testDrainModeRefusesNewJobsButServesOldOnes(): void
    {
        $server = Harness::startExtra([]);
        try {
            $p = $this->client($server);
            $old = $p->put('before the drain');
            $server->signal(SIGUSR1);
            $this->waitFor(function () use ($p) {
                return $p->stats()['draining'] === 'true';
            }, 'draining: true after SIGUSR1');
            try {
                $p->put('refused');
                $this->fail('a job was accepted while draining');
            } catch (ServerDrainingException $e) {
                $this->addToAssertionCount(1);
            }
            $this->assertSame('1', $p->stats()['total-jobs']);
            $job = $p->reserveWithTimeout(0);
            $this->assertSame($old->getId(), $job->getId());
            $p->delete($job);
        } finally {
            unset($p);
            $problems = Harness::stop($server);
        }
        $this->assertSame([], $problems, implode("\n", $problems));
    }
}
