<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;
use Defer\Tests\Support\Deferd;
use Defer\Tests\Support\Process;
use Defer\Tests\Support\Servers;

/**
 * The README's two stories, run as they are printed (examples/ holds the
 * same code) against a deferd of their own, workers included.
 */
final class ExamplesTest extends ClientTestCase
{
    private const PHEANSTALK = '/usr/share/php/Pheanstalk/autoload.php';

    public function testBulkMailFromAWebRequest(): void
    {
        $server = $this->server();
        $client = $this->client([], $server->url());

        [$out, $err] = $this->runExample('bulk-mail/send-newsletter.php', $server);
        $this->assertSame(['queued' => 5000, 'first_task' => 1], json_decode($out, true), $err);
        $this->assertSame(5000, $client->queue('mail')?->ready);

        // A double click queues nothing twice.
        [$out] = $this->runExample('bulk-mail/send-newsletter.php', $server);
        $this->assertSame(['queued' => 5000, 'first_task' => 1], json_decode($out, true));
        $this->assertSame(5000, $client->queue('mail')?->totalEnqueued);

        $this->requirePheanstalk();
        [$out] = $this->runExample('bulk-mail/mail-worker.php', $server, ['--until-empty']);
        $lines = explode("\n", trim($out));
        $this->assertCount(5000, $lines);
        $this->assertSame('sent newsletter 2026-11 to subscriber1@example.org', $lines[0]);
        $this->assertSame('sent newsletter 2026-11 to subscriber5000@example.org', $lines[4999]);
        $this->assertNull($client->queue('mail'), 'every mail was sent and deleted');
        $this->assertSame(TaskState::Done, $client->task(1)?->state);

        $this->assertStopsCleanly($server);
    }

    public function testTheClassroomNetworkRestore(): void
    {
        $server = $this->server();
        $client = $this->client([], $server->url());

        [$out, $err] = $this->runExample('classroom/network.php', $server);
        $time = '\d\d:\d\d:\d\d';
        $this->assertMatchesRegularExpression(
            "/^firewall: room 301 blocked\n"
            . "restore task 1: delayed until ($time) \\(new: yes\\)\n"
            . "firewall: room 301 blocked\n"
            . "restore task 1: delayed until ($time) \\(replaced: yes\\)\n"
            . "firewall: room 301 open\n"
            . "restore task 1: cancelled\n"
            . "firewall: room 301 open\n"
            . "NULL\n$/",
            $out,
            $err,
        );
        $this->assertSame(TaskState::Cancelled, $client->task(1)?->state);
        $this->assertNull($client->queue('network'));

        // A restore that is due: the worker carries it out.
        $client->dispatch('network', ['room' => 302, 'action' => 'restore'], ['key' => 'room-302', 'run_at' => time() - 1]);
        $this->requirePheanstalk();
        [$out] = $this->runExample('classroom/network-worker.php', $server, ['--until-empty']);
        $this->assertSame("firewall: room 302 open (end of lesson)\n", $out);
        $this->assertNull($client->cancelKey('network', 'room-302'), 'done: nothing holds the key');

        $this->assertStopsCleanly($server);
    }

    public function testTheReadmeShowsTheExamplesAsTheyAre(): void
    {
        $readme = (string) file_get_contents(dirname(__DIR__) . '/README.md');
        $examples = [
            'bulk-mail/send-newsletter.php',
            'bulk-mail/mail-worker.php',
            'classroom/network.php',
            'classroom/network-worker.php',
        ];
        foreach ($examples as $example) {
            $code = rtrim((string) file_get_contents(dirname(__DIR__) . '/examples/' . $example), "\n");
            $this->assertStringContainsString("```php\n$code\n```", $readme, "README.md shows examples/$example as it is");
        }
    }

    private function requirePheanstalk(): void
    {
        if (!is_file(self::PHEANSTALK)) {
            $this->markTestSkipped('pheanstalk is not installed (apt-get install php-pda-pheanstalk)');
        }
    }

    /**
     * Runs an example as an application would (require 'vendor/autoload.php'
     * resolves through the include path to a stand-in for composer's).
     *
     * @param list<string> $args
     *
     * @return array{string, string} stdout and stderr
     */
    private function runExample(string $example, Deferd $server, array $args = []): array
    {
        $root = Servers::dir() . '/app';
        if (!is_file("$root/vendor/autoload.php")) {
            @mkdir("$root/vendor", 0700, true);
            file_put_contents("$root/vendor/autoload.php", sprintf(<<<'PHP'
                <?php
                spl_autoload_register(static function (string $class): void {
                    if (str_starts_with($class, 'Defer\\')) {
                        require %s . str_replace('\\', '/', substr($class, 6)) . '.php';
                    }
                });
                if (is_file(%s)) {
                    require_once %s;
                }
                PHP,
                var_export(dirname(__DIR__) . '/src/', true),
                var_export(self::PHEANSTALK, true),
                var_export(self::PHEANSTALK, true),
            ));
        }
        $command = array_merge([
            'env', 'DEFER_URL=' . $server->url(), 'BEANSTALK_PORT=' . $server->port,
            PHP_BINARY, '-d', 'include_path=' . $root, '-d', 'display_errors=stderr',
            dirname(__DIR__) . '/examples/' . $example,
        ], $args);
        $process = Process::open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = (string) stream_get_contents($pipes[1]);
        $err = (string) stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $status = proc_close($process);
        $this->assertSame(0, $status, "$example exited with $status; stderr:\n$err");
        $this->assertSame('', $err, "$example wrote to stderr");

        return [$out, $err];
    }
}
