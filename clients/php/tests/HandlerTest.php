<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Handler;
use Defer\PushedTask;
use Defer\Task;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;
use Defer\Tests\Support\Deferd;
use Defer\Tests\Support\Process;
use Defer\Tests\Support\Servers;

/**
 * Defer\Handler and Defer\PushedTask: the pure pieces on their own, then one
 * push script run for real - by php-fpm through deferd's fastcgi target, by
 * deferd's exec target on the command line, and by PHP's built-in web server
 * - to check what deferd and a web client see of each outcome.
 */
final class HandlerTest extends ClientTestCase
{
    /** How long a pushed task may take to reach the awaited state: a guard, not a measure. */
    private const WAIT_SECONDS = 30.0;

    /**
     * The push script of the end-to-end tests. It records each attempt in
     * ran-<id>-<attempt>.json next to itself, then, as the payload asks,
     * sends some output at once and throws.
     */
    private const SCRIPT = <<<'PHP'
        <?php
        declare(strict_types=1);
        spl_autoload_register(static function (string $class): void {
            require %s . str_replace('\\', '/', substr($class, strlen('Defer\\'))) . '.php';
        });
        Defer\Handler::run(function (Defer\PushedTask $task): void {
            file_put_contents(__DIR__ . "/ran-{$task->id}-{$task->attempt}.json", json_encode([
                'id' => $task->id, 'queue' => $task->queue, 'attempt' => $task->attempt,
                'payload' => $task->isJson ? $task->payload : base64_encode($task->payload),
                'raw' => base64_encode($task->rawPayload), 'json' => $task->isJson, 'sapi' => PHP_SAPI,
            ], JSON_THROW_ON_ERROR));
            if (is_array($task->payload) && isset($task->payload['flush'])) {
                echo 'sent before the failure';
                ob_flush(); // out of Handler's buffer,
                flush();    // and out to php-fpm: the status goes with it
            }
            if (is_array($task->payload) && isset($task->payload['throw'])) {
                throw new DomainException($task->payload['throw']);
            }
        });
        PHP;

    /** A directory of the test's own: the script, its records, the servers' files. */
    private string $dir = '';
    /** @var list<resource> php-fpm and php -S processes, stopped in tearDown */
    private array $processes = [];

    protected function setUp(): void
    {
        $this->dir = Servers::dir() . '/handler-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700);
        file_put_contents(
            $this->dir . '/push.php',
            sprintf(self::SCRIPT, var_export(dirname(__DIR__) . '/src/', true)),
        );
    }

    protected function tearDown(): void
    {
        foreach ($this->processes as $process) {
            self::stopProcess($process);
        }
        $this->processes = [];
        parent::tearDown();
    }

    // ---- PushedTask: reading what deferd sends ------------------------------

    public function testATaskFromPhpFpmWithAJsonPayload(): void
    {
        $task = PushedTask::fromServer([
            'HTTP_X_DEFER_TASK_ID' => '812',
            'HTTP_X_DEFER_QUEUE' => 'mail',
            'HTTP_X_DEFER_ATTEMPT' => '2',
            'CONTENT_TYPE' => 'application/json',
        ], '{"to":"ana@example.org","n":[1,2]}');

        $this->assertSame(812, $task->id);
        $this->assertSame('mail', $task->queue);
        $this->assertSame(2, $task->attempt);
        $this->assertSame(['to' => 'ana@example.org', 'n' => [1, 2]], $task->payload);
        $this->assertSame('{"to":"ana@example.org","n":[1,2]}', $task->rawPayload);
        $this->assertTrue($task->isJson);
    }

    public function testATaskFromAWebServerWithBytes(): void
    {
        // A web server may pass the type as HTTP_CONTENT_TYPE only.
        $task = PushedTask::fromServer([
            'HTTP_X_DEFER_TASK_ID' => '7',
            'HTTP_X_DEFER_QUEUE' => 'thumbs',
            'HTTP_X_DEFER_ATTEMPT' => '1',
            'HTTP_CONTENT_TYPE' => 'application/octet-stream',
        ], "\x00\xff{");

        $this->assertSame("\x00\xff{", $task->payload);
        $this->assertSame("\x00\xff{", $task->rawPayload);
        $this->assertFalse($task->isJson);
    }

    public function testTheJsonMediaTypeMayHaveParameters(): void
    {
        $server = ['HTTP_X_DEFER_TASK_ID' => '1', 'HTTP_X_DEFER_QUEUE' => 'q', 'HTTP_X_DEFER_ATTEMPT' => '1'];

        $this->assertTrue(PushedTask::fromServer($server + ['CONTENT_TYPE' => 'Application/JSON; charset=utf-8'], '1')->isJson);
        $this->assertFalse(PushedTask::fromServer($server + ['CONTENT_TYPE' => 'text/plain'], '1')->isJson);
        $this->assertFalse(PushedTask::fromServer($server, '1')->isJson, 'no type: bytes');
    }

    public function testARequestWithoutTheTaskHeadersIsNotDeferds(): void
    {
        $e = $this->expectThrown(\InvalidArgumentException::class, static fn () => PushedTask::fromServer(
            ['CONTENT_TYPE' => 'application/json', 'HTTP_X_DEFER_QUEUE' => 'q', 'HTTP_X_DEFER_ATTEMPT' => '1'],
            '{}',
        ));
        $this->assertSame('not a task pushed by deferd: the X-Defer-Task-Id header is missing', $e->getMessage());

        $e = $this->expectThrown(\InvalidArgumentException::class, static fn () => PushedTask::fromServer(
            ['HTTP_X_DEFER_TASK_ID' => '1', 'HTTP_X_DEFER_ATTEMPT' => '1'],
            '',
        ));
        $this->assertSame('the X-Defer-Queue header is missing or empty', $e->getMessage());
    }

    public function testIdsAndAttemptsArePositiveIntegers(): void
    {
        $bad = ['0', '-1', '1.5', ' 1', '01', 'x', '', '99999999999999999999'];
        foreach ($bad as $value) {
            foreach (['HTTP_X_DEFER_TASK_ID' => 'X-Defer-Task-Id', 'HTTP_X_DEFER_ATTEMPT' => 'X-Defer-Attempt'] as $key => $header) {
                $server = ['HTTP_X_DEFER_TASK_ID' => '1', 'HTTP_X_DEFER_QUEUE' => 'q', 'HTTP_X_DEFER_ATTEMPT' => '1'];
                $server[$key] = $value;
                $e = $this->expectThrown(\InvalidArgumentException::class, static fn () => PushedTask::fromServer($server, ''));
                $this->assertSame("the $header header must be a positive integer, not \"$value\"", $e->getMessage());
            }
        }
        $big = PushedTask::fromServer(['HTTP_X_DEFER_TASK_ID' => (string) PHP_INT_MAX, 'HTTP_X_DEFER_QUEUE' => 'q', 'HTTP_X_DEFER_ATTEMPT' => '1'], '');
        $this->assertSame(PHP_INT_MAX, $big->id);
    }

    public function testAJsonPayloadThatDoesNotParseIsAJsonException(): void
    {
        $e = $this->expectThrown(\JsonException::class, static fn () => PushedTask::fromServer([
            'HTTP_X_DEFER_TASK_ID' => '9', 'HTTP_X_DEFER_QUEUE' => 'q', 'HTTP_X_DEFER_ATTEMPT' => '1',
            'CONTENT_TYPE' => 'application/json',
        ], '{"to": '));
        $this->assertSame('the payload of task 9 is not valid JSON: Syntax error', $e->getMessage());
    }

    public function testATaskFromTheEnvironmentOfACommand(): void
    {
        $env = ['DEFER_TASK_ID' => '31', 'DEFER_QUEUE' => 'thumbs', 'DEFER_ATTEMPT' => '3', 'PATH' => '/usr/bin'];

        $json = PushedTask::fromEnvironment($env + ['DEFER_PAYLOAD_TYPE' => 'json'], '{"w":640}');
        $this->assertSame([31, 'thumbs', 3, ['w' => 640], '{"w":640}', true], [
            $json->id, $json->queue, $json->attempt, $json->payload, $json->rawPayload, $json->isJson,
        ]);

        $bytes = PushedTask::fromEnvironment($env + ['DEFER_PAYLOAD_TYPE' => 'bytes'], "GIF89a\x00");
        $this->assertSame("GIF89a\x00", $bytes->payload);
        $this->assertFalse($bytes->isJson);
        $this->assertFalse(PushedTask::fromEnvironment($env, 'x')->isJson, 'no type: bytes');

        $e = $this->expectThrown(\InvalidArgumentException::class, static fn () => PushedTask::fromEnvironment($env + ['DEFER_PAYLOAD_TYPE' => 'xml'], ''));
        $this->assertSame('DEFER_PAYLOAD_TYPE must be json or bytes, not "xml"', $e->getMessage());
        $e = $this->expectThrown(\InvalidArgumentException::class, static fn () => PushedTask::fromEnvironment(['PATH' => '/usr/bin'], ''));
        $this->assertSame('not a task pushed by deferd: DEFER_TASK_ID is missing', $e->getMessage());
        $e = $this->expectThrown(\JsonException::class, static fn () => PushedTask::fromEnvironment($env + ['DEFER_PAYLOAD_TYPE' => 'json'], ''));
        $this->assertSame('the payload of task 31 is not valid JSON: Syntax error', $e->getMessage());
    }

    // ---- Handler: running the function and wording a failure ----------------

    public function testHandleCallsTheFunctionWithTheTask(): void
    {
        $task = new PushedTask(1, 'q', 1, ['a' => 1], '{"a":1}', true);
        $seen = null;

        $this->assertNull(Handler::handle(static function (PushedTask $t) use (&$seen): string {
            $seen = $t;

            return 'whatever it returns';
        }, $task));
        $this->assertSame($task, $seen);
    }

    public function testHandleReturnsWhatTheFunctionThrew(): void
    {
        $task = new PushedTask(1, 'q', 1, 'x', 'x', false);
        $thrown = new \RuntimeException('SMTP refused');

        $this->assertSame($thrown, Handler::handle(static fn () => throw $thrown, $task));
        $this->assertInstanceOf(\TypeError::class, Handler::handle(static fn (PushedTask $t): int => strlen($t->payload) . 'x', $task));
    }

    public function testTheFailureLineIsTheClassAndTheFirstLineOfTheMessage(): void
    {
        $this->assertSame(
            'Uncaught RuntimeException: SMTP refused: 550 mailbox unavailable',
            Handler::failureLine(new \RuntimeException("SMTP refused: 550 mailbox unavailable\r\nRemote said: ...\n")),
        );
        $this->assertSame('Uncaught Defer\Exception\ServerException: x', Handler::failureLine(new \Defer\Exception\ServerException('x')));
        $this->assertSame('Uncaught LogicException', Handler::failureLine(new \LogicException('')));
        $this->assertSame('Uncaught LogicException', Handler::failureLine(new \LogicException("\nonly a second line")));
    }

    public function testALongFailureLineIsCutOnACharacterBoundary(): void
    {
        foreach ([str_repeat('a', 1000), str_repeat('é', 500), str_repeat('€', 400), 'x' . str_repeat('😀', 300)] as $message) {
            $line = Handler::failureLine(new \RuntimeException($message));
            $this->assertLessThanOrEqual(Handler::LINE_MAX, strlen($line));
            $this->assertGreaterThan(Handler::LINE_MAX - 8, strlen($line));
            $this->assertStringStartsWith('Uncaught RuntimeException: ', $line);
            $this->assertStringEndsWith('...', $line);
            $this->assertSame(1, preg_match('//u', $line), 'still valid UTF-8: ' . bin2hex(substr($line, -8)));
        }
        $fits = 'Uncaught RuntimeException: ' . str_repeat('b', Handler::LINE_MAX - 27);
        $this->assertSame($fits, Handler::failureLine(new \RuntimeException(substr($fits, 27))));
    }

    // ---- run(), end to end ----------------------------------------------------

    public function testPhpFpmRunsAPushedTask(): void
    {
        $server = $this->deferdPushingTo($this->startPhpFpm());
        $client = $this->client([], $server->url());

        $json = $client->dispatch('fcgi', ['to' => 'ana@example.org', 'tags' => ['a/b', 'ü']]);
        $raw = $client->dispatch('fcgi', "\x00\x01binary\xff", ['raw' => true]);

        $this->assertSame(TaskState::Done, $this->awaitFinished($client, $json->id)->state);
        $this->assertSame(TaskState::Done, $this->awaitFinished($client, $raw->id)->state);
        $this->assertSame([
            'id' => $json->id, 'queue' => 'fcgi', 'attempt' => 1,
            'payload' => ['to' => 'ana@example.org', 'tags' => ['a/b', 'ü']],
            'raw' => base64_encode('{"to":"ana@example.org","tags":["a/b","ü"]}'), 'json' => true, 'sapi' => 'fpm-fcgi',
        ], $this->record($json->id, 1));
        $this->assertSame([
            'id' => $raw->id, 'queue' => 'fcgi', 'attempt' => 1,
            'payload' => base64_encode("\x00\x01binary\xff"),
            'raw' => base64_encode("\x00\x01binary\xff"), 'json' => false, 'sapi' => 'fpm-fcgi',
        ], $this->record($raw->id, 1));

        $this->assertStopsCleanly($server);
    }

    public function testAnExceptionInPhpFpmFailsTheAttemptWithItsClassAndMessage(): void
    {
        $server = $this->deferdPushingTo($this->startPhpFpm());
        $client = $this->client([], $server->url());

        $task = $client->dispatch('fcgi', ['throw' => "mailbox full: ana@example.org\nsecond line"], ['max_attempts' => 2]);
        $failed = $this->awaitFinished($client, $task->id);

        $this->assertSame(TaskState::Failed, $failed->state);
        $this->assertSame(2, $failed->attempts, 'retried once, then failed');
        $this->assertNotNull($this->record($task->id, 1));
        $this->assertNotNull($this->record($task->id, 2));
        $this->assertStringStartsWith('attempt 2: php-fpm answered 500: ', (string) $failed->lastError);
        $this->assertStringContainsString('Uncaught DomainException: mailbox full: ana@example.org', (string) $failed->lastError);
        $this->assertStringEndsWith('; output: Uncaught DomainException: mailbox full: ana@example.org', (string) $failed->lastError);

        // Output sent out before the exception: the status went with it, 200;
        // the exception is rethrown, and deferd fails the attempt on PHP's fatal error.
        $flushed = $client->dispatch('fcgi', ['flush' => true, 'throw' => 'too late for a 500'], ['max_attempts' => 1]);
        $failed = $this->awaitFinished($client, $flushed->id);
        $this->assertSame(TaskState::Failed, $failed->state);
        $this->assertStringStartsWith('attempt 1: php-fpm answered 200, but PHP reported a fatal error: ', (string) $failed->lastError);
        $this->assertStringContainsString('Uncaught DomainException: too late for a 500', (string) $failed->lastError);

        $this->assertStopsCleanly($server);
    }

    public function testTheExecTargetRunsAPushedTaskOnTheCommandLine(): void
    {
        $server = $this->deferdPushingTo(null);
        $client = $this->client([], $server->url());

        $ok = $client->dispatch('exec', ['w' => 640]);
        $raw = $client->dispatch('exec', 'GIF89a', ['raw' => true]);
        $bad = $client->dispatch('exec', ['throw' => 'no such image: 12.gif'], ['max_attempts' => 1]);

        $this->assertSame(TaskState::Done, $this->awaitFinished($client, $ok->id)->state);
        $this->assertSame(TaskState::Done, $this->awaitFinished($client, $raw->id)->state);
        $this->assertSame([
            'id' => $ok->id, 'queue' => 'exec', 'attempt' => 1, 'payload' => ['w' => 640],
            'raw' => base64_encode('{"w":640}'), 'json' => true, 'sapi' => 'cli',
        ], $this->record($ok->id, 1));
        $this->assertSame(base64_encode('GIF89a'), $this->record($raw->id, 1)['payload'] ?? null);
        $this->assertFalse($this->record($raw->id, 1)['json'] ?? null);

        $failed = $this->awaitFinished($client, $bad->id);
        $this->assertSame(TaskState::Failed, $failed->state);
        $this->assertStringStartsWith('attempt 1: exit status 1; stderr: ', (string) $failed->lastError);
        $this->assertStringEndsWith(' Uncaught DomainException: no such image: 12.gif', (string) $failed->lastError);

        $this->assertStopsCleanly($server);
    }

    public function testOnTheCommandLineTheExitStatusIsTheOutcome(): void
    {
        $task = ['DEFER_TASK_ID=5', 'DEFER_QUEUE=q', 'DEFER_ATTEMPT=1', 'DEFER_PAYLOAD_TYPE=json'];

        [$status, $err] = $this->runScript([], '{"n":1}');
        $this->assertSame(2, $status);
        $this->assertSame("push.php: not a task pushed by deferd: DEFER_TASK_ID is missing (it runs the tasks of a deferd push queue: docs/push.md)\n", $err);
        $this->assertSame([], glob($this->dir . '/ran-*'), 'the function did not run');

        [$status, $err] = $this->runScript($task, '{"n":');
        $this->assertSame(1, $status);
        $this->assertSame("the payload of task 5 is not valid JSON: Syntax error\n", $err);
        $this->assertSame([], glob($this->dir . '/ran-*'), 'the function did not run');

        [$status, $err] = $this->runScript($task, '{"throw":"boom"}');
        $this->assertSame(1, $status);
        $this->assertStringStartsWith("Uncaught DomainException: boom in {$this->dir}/push.php:", $err, 'the exception, with its trace');
        $this->assertStringContainsString("\n  in task 5 of queue q, attempt 1\n", $err);
        $this->assertStringEndsWith("\nUncaught DomainException: boom\n", $err, 'the failure line last');

        [$status, $err] = $this->runScript($task, '{"n":1}');
        $this->assertSame(0, $status);
        $this->assertSame('', $err);
        $this->assertSame(['n' => 1], $this->record(5, 1)['payload'] ?? null);
    }

    public function testOnTheWebTheStatusIsTheOutcome(): void
    {
        $url = $this->startWebServer() . '/push.php';
        $headers = ['X-Defer-Task-Id: 8', 'X-Defer-Queue: web', 'X-Defer-Attempt: 1', 'Content-Type: application/json'];

        [$status, $body] = self::post($url, ['Content-Type: application/json'], '{"n":1}');
        $this->assertSame(400, $status);
        $this->assertSame("push.php: not a task pushed by deferd: the X-Defer-Task-Id header is missing (it runs the tasks of a deferd push queue: docs/push.md)\n", $body);

        [$status, $body] = self::post($url, $headers, '[1,');
        $this->assertSame(500, $status);
        $this->assertSame("the payload of task 8 is not valid JSON: Syntax error\n", $body);
        $this->assertSame([], glob($this->dir . '/ran-*'), 'the function did not run');

        [$status, $body] = self::post($url, $headers, '{"throw":"boom\nand more"}');
        $this->assertSame(500, $status);
        $this->assertSame("Uncaught DomainException: boom\n", $body);

        [$status, $body] = self::post($url, $headers, '{"n":2}');
        $this->assertSame(204, $status, 'nothing printed: no content');
        $this->assertSame('', $body);
        $this->assertSame(['n' => 2], $this->record(8, 1)['payload'] ?? null);
    }

    // ---- helpers ----------------------------------------------------------------

    /**
     * A deferd of the test's own with two push queues: "fcgi" into the
     * php-fpm at $socket (if any), and "exec" running the script with the CLI.
     */
    private function deferdPushingTo(?string $socket): Deferd
    {
        $config = sprintf(
            "[exec]\ntarget = exec\ncommand = '%s' -n '%s/push.php'\nbackoff_min = 100ms\nbackoff_max = 100ms\n",
            PHP_BINARY,
            $this->dir,
        );
        if ($socket !== null) {
            $config .= sprintf(
                "[fcgi]\ntarget = fastcgi\naddress = unix:%s\nscript = %s/push.php\nconcurrency = 2\nbackoff_min = 100ms\nbackoff_max = 100ms\n",
                $socket,
                $this->dir,
            );
        }
        file_put_contents($this->dir . '/deferd.ini', $config);

        return $this->server(['--config', $this->dir . '/deferd.ini']);
    }

    /** Starts php-fpm with a pool of its own on a unix socket; returns the socket's path. */
    private function startPhpFpm(): string
    {
        $binary = self::phpFpmBinary();
        if ($binary === null) {
            $this->markTestSkipped('php-fpm is not installed (apt-get install php-fpm), or set PHP_FPM to it');
        }
        $socket = $this->dir . '/php-fpm.sock';
        file_put_contents($this->dir . '/php-fpm.conf', implode("\n", [
            '[global]',
            "pid = {$this->dir}/php-fpm.pid",
            "error_log = {$this->dir}/php-fpm.log",
            'daemonize = no',
            '[push]',
            "listen = $socket",
            'pm = static',
            'pm.max_children = 2',
            '',
        ]));
        // PHP's built-in settings, whatever the system's php.ini says, but
        // errors logged as php.ini-production has it: to php-fpm's FastCGI
        // stderr, where deferd looks for PHP's fatal errors.
        $command = [$binary, '-n', '-d', 'display_errors=0', '-d', 'log_errors=1', '-y', $this->dir . '/php-fpm.conf'];
        if (posix_geteuid() === 0) {
            $command[] = '-R'; // php-fpm refuses to run as root without it
        }
        $process = Process::open($command, [
            0 => ['file', '/dev/null', 'r'],
            1 => ['file', $this->dir . '/php-fpm.out', 'w'],
            2 => ['file', $this->dir . '/php-fpm.out', 'a'],
        ]);
        $this->processes[] = $process;
        $this->await(
            static fn (): bool => file_exists($socket) && ($s = @stream_socket_client("unix://$socket")) !== false && fclose($s),
            fn (): string => "php-fpm to listen on $socket; its output:\n" . @file_get_contents($this->dir . '/php-fpm.out')
                . @file_get_contents($this->dir . '/php-fpm.log'),
            $process,
        );

        return $socket;
    }

    /** Starts PHP's built-in web server on the test's directory; returns its base URL. */
    private function startWebServer(): string
    {
        $port = Process::freePort();
        $process = Process::open([PHP_BINARY, '-n', '-S', "127.0.0.1:$port", '-t', $this->dir], [
            0 => ['file', '/dev/null', 'r'],
            1 => ['file', $this->dir . '/php-s.out', 'w'],
            2 => ['file', $this->dir . '/php-s.out', 'a'],
        ]);
        $this->processes[] = $process;
        $this->await(
            static fn (): bool => ($s = @stream_socket_client("tcp://127.0.0.1:$port")) !== false && fclose($s),
            fn (): string => "php -S to listen on port $port; its output:\n" . @file_get_contents($this->dir . '/php-s.out'),
            $process,
        );

        return "http://127.0.0.1:$port";
    }

    private static function phpFpmBinary(): ?string
    {
        $candidates = array_filter([getenv('PHP_FPM') ?: null, 'php-fpm' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION, 'php-fpm']);
        foreach ($candidates as $name) {
            foreach (str_contains($name, '/') ? [$name] : ['/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin'] as $dir) {
                $path = str_contains($name, '/') ? $name : "$dir/$name";
                if (is_file($path) && is_executable($path)) {
                    return $path;
                }
            }
        }

        return null;
    }

    /**
     * Runs the push script with the CLI, a clean environment plus $env, and $stdin.
     *
     * @param list<string> $env NAME=value
     *
     * @return array{int, string} exit status and stderr
     */
    private function runScript(array $env, string $stdin): array
    {
        $command = array_merge(['env', '-i', 'PATH=' . getenv('PATH')], $env, [PHP_BINARY, '-n', $this->dir . '/push.php']);
        $process = Process::open($command, [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']], $pipes);
        fwrite($pipes[0], $stdin);
        fclose($pipes[0]);
        $err = (string) stream_get_contents($pipes[2]);
        fclose($pipes[2]);

        return [proc_close($process), $err];
    }

    /**
     * POSTs $body; answers the status and the body.
     *
     * @param list<string> $headers
     *
     * @return array{int, string}
     */
    private static function post(string $url, array $headers, string $body): array
    {
        $context = stream_context_create(['http' => [
            'method' => 'POST',
            'header' => $headers,
            'content' => $body,
            'ignore_errors' => true, // the body of a 4xx or 5xx too
            'timeout' => 10,
        ]]);
        $answer = file_get_contents($url, false, $context);
        $statusLine = $http_response_header[0] ?? '';
        if ($answer === false || preg_match('#^HTTP/\S+ (\d{3})#', $statusLine, $m) !== 1) {
            throw new \RuntimeException("no answer from $url");
        }

        return [(int) $m[1], $answer];
    }

    /**
     * What the script recorded of an attempt.
     *
     * @return array<string, mixed>|null
     */
    private function record(int $id, int $attempt): ?array
    {
        $file = "{$this->dir}/ran-$id-$attempt.json";

        return is_file($file) ? json_decode((string) file_get_contents($file), true, 512, JSON_THROW_ON_ERROR) : null;
    }

    /** Polls the task until it is done, failed or cancelled. */
    private function awaitFinished(\Defer\Client $client, int $id): Task
    {
        $task = null;
        $this->await(
            static function () use ($client, $id, &$task): bool {
                $task = $client->task($id);

                return $task !== null && $task->isFinished();
            },
            static fn (): string => "task $id to finish; it is " . json_encode($task),
        );

        return $task;
    }

    /**
     * Polls $condition until it holds, for at most WAIT_SECONDS; fails the
     * test with $what() otherwise, or at once if $process exited meanwhile.
     *
     * @param callable(): bool   $condition
     * @param callable(): string $what      what was awaited, and what is known
     * @param resource|null      $process
     */
    private function await(callable $condition, callable $what, $process = null): void
    {
        $deadline = microtime(true) + self::WAIT_SECONDS;
        while (!$condition()) {
            if ($process !== null && !proc_get_status($process)['running']) {
                $this->fail('the process exited while waiting for ' . $what());
            }
            if (microtime(true) > $deadline) {
                $this->fail(sprintf('waited %.0f s for %s', self::WAIT_SECONDS, $what()));
            }
            usleep(20000);
        }
    }

    /** SIGTERM, a bounded wait, then SIGKILL. */
    private static function stopProcess($process): void
    {
        proc_terminate($process);
        $deadline = microtime(true) + 10;
        while (proc_get_status($process)['running'] && microtime(true) < $deadline) {
            usleep(10000);
        }
        if (proc_get_status($process)['running']) {
            proc_terminate($process, SIGKILL);
        }
        proc_close($process);
    }
}
