<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Client;
use Defer\Exception\AuthenticationException;
use Defer\Exception\ConflictException;
use Defer\Exception\ConnectionException;
use Defer\Exception\DeferException;
use Defer\Exception\DrainingException;
use Defer\Exception\NotFoundException;
use Defer\Exception\ServerException;
use Defer\Exception\StorageFullException;
use Defer\Exception\TimeoutException;
use Defer\Exception\TooLargeException;
use Defer\Exception\ValidationException;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;
use Defer\Tests\Support\FakeHttpServer;
use Defer\Tests\Support\Servers;

/**
 * The exceptions a server's answer turns into, produced by real deferd
 * processes (a token, drain mode, a full disk) wherever deferd can be made to
 * give that answer, and by the fake server only for what deferd never sends.
 * (ValidationException, NotFoundException and ConflictException are also
 * exercised in DispatchTest, CancelTest and QueueTest.)
 */
final class ErrorsTest extends ClientTestCase
{
    public function testTheExceptionHierarchy(): void
    {
        foreach ([
            ConnectionException::class, ValidationException::class, AuthenticationException::class,
            NotFoundException::class, ConflictException::class, TooLargeException::class,
            DrainingException::class, StorageFullException::class, ServerException::class,
        ] as $class) {
            $this->assertTrue(is_subclass_of($class, DeferException::class), $class);
        }
        $this->assertTrue(is_subclass_of(TimeoutException::class, ConnectionException::class));
        $this->assertTrue(is_subclass_of(DeferException::class, \RuntimeException::class));
    }

    public function testAPayloadOverTheTaskSizeIsTooLarge(): void
    {
        $client = $this->client();
        $queue = $this->queueName();
        $e = $this->expectThrown(TooLargeException::class, fn () => $client->dispatch($queue, str_repeat('x', 70000)));

        $this->assertServerError($e, 413, 'too_large', 'the largest task is 65535 bytes');
        // The request was read whole: the connection goes on being used.
        $this->assertSame(TaskState::Ready, $client->dispatch($queue, 'small')->state);
        $this->assertSame(1, $client->connectCount());
        $this->assertSame(1, $client->stats()['connections']['http']);
    }

    public function testAServerWithATokenRefusesRequestsWithoutIt(): void
    {
        $token = 'tok-' . bin2hex(random_bytes(12));
        $file = Servers::dir() . '/token-' . bin2hex(random_bytes(4));
        file_put_contents($file, $token . "\n");
        $server = $this->server(['--http-token-file', $file]);

        $anonymous = $this->client([], $server->url());
        $e = $this->expectThrown(AuthenticationException::class, fn () => $anonymous->dispatch('mail', 'x'));
        $this->assertServerError($e, 401, 'unauthorized', "Authorization: Bearer <token>");
        $this->assertSame('ok', $anonymous->health(), 'GET /healthz needs no token');

        $wrong = $this->client(['token' => $token . 'x'], $server->url());
        $e = $this->expectThrown(AuthenticationException::class, fn () => $wrong->queues());
        $this->assertServerError($e, 401, 'unauthorized', 'requires a token');

        $right = $this->client(['token' => $token], $server->url());
        $task = $right->dispatch('mail', 'x');
        $this->assertSame($task->id, $right->task($task->id)?->id);

        // The file's contents as they are (with the line break) work too.
        $fromFile = $this->client(['token' => (string) file_get_contents($file)], $server->url());
        $this->assertSame(1, $fromFile->queue('mail')?->ready);

        $this->assertStopsCleanly($server);
    }

    public function testADrainingServerRefusesNewTasksOnly(): void
    {
        $server = $this->server();
        $client = $this->client([], $server->url());
        $task = $client->dispatch('mail', 'before', ['delay' => 60]);

        $server->signal(SIGUSR1);
        $deadline = microtime(true) + 20;
        while ($client->health() !== 'draining' && microtime(true) < $deadline) {
            usleep(10000);
        }
        $this->assertSame('draining', $client->health());

        $e = $this->expectThrown(DrainingException::class, fn () => $client->dispatch('mail', 'after'));
        $this->assertServerError($e, 503, 'draining', 'the server is draining');
        $e = $this->expectThrown(DrainingException::class, fn () => $client->dispatchMany('mail', ['a', 'b']));
        $this->assertServerError($e, 503, 'draining', 'new tasks are refused');

        // Everything else still works.
        $this->assertTrue($client->stats()['draining']);
        $this->assertSame(TaskState::Delayed, $client->task($task->id)?->state);
        $this->assertSame(TaskState::Cancelled, $client->cancel($task->id)->state);

        $this->assertStopsCleanly($server);
    }

    public function testAFullDiskIsStorageFull(): void
    {
        $mount = Servers::dir() . '/disk-' . bin2hex(random_bytes(4));
        mkdir($mount);
        exec('mount -t tmpfs -o size=4m tmpfs ' . escapeshellarg($mount) . ' 2>&1', $output, $status);
        if ($status !== 0) {
            rmdir($mount);
            $this->markTestSkipped('cannot mount a small tmpfs here (needs root): ' . implode(' ', $output));
        }
        try {
            file_put_contents($mount . '/filler', str_repeat("\0", 1536 * 1024));
            $server = $this->server([], $mount . '/data');
            $client = $this->client([], $server->url());
            $enqueued = [];
            $full = null;
            for ($round = 0; $round < 50 && $full === null; $round++) {
                try {
                    foreach ($client->dispatchMany('mail', array_fill(0, 100, str_repeat('f', 2000))) as $task) {
                        $enqueued[] = $task->id;
                    }
                } catch (StorageFullException $e) {
                    $full = $e;
                }
            }
            $this->assertNotNull($full, 'the disk never filled up');
            $this->assertServerError($full, 507, 'storage_full', 'the disk holding the log is full');
            $this->assertNotEmpty($enqueued);
            // A batch needs room for all its tasks; single tasks fit a while longer.
            $single = null;
            for ($i = 0; $i < 5000 && $single === null; $i++) {
                try {
                    $enqueued[] = $client->dispatch('mail', str_repeat('f', 2000))->id;
                } catch (StorageFullException $e) {
                    $single = $e;
                }
            }
            $this->assertNotNull($single, 'single tasks were never refused');
            $this->assertServerError($single, 507, 'storage_full', 'the disk holding the log is full');

            // Cancels still work: they are how space is freed.
            $this->assertSame(TaskState::Cancelled, $client->cancel($enqueued[0])->state);
            $this->assertTrue($client->stats()['log']['disk_full']);

            $this->assertStopsCleanly($server);
        } finally {
            exec('umount -l ' . escapeshellarg($mount));
            @rmdir($mount);
        }
    }

    public function testAWrongUrlPrefixIsNotMistakenForAMissingTask(): void
    {
        $client = $this->client([], Servers::shared()->url() . '/not-the-api');
        $e = $this->expectThrown(NotFoundException::class, fn () => $client->task(1));

        $this->assertServerError($e, 404, 'not_found', 'no such endpoint: GET /not-the-api/v1/tasks/1');
    }

    public function testAnInternalErrorIsAServerException(): void
    {
        $error = '{"error":{"code":"internal","message":"out of memory enqueueing the task"}}';
        $fake = $this->fake([['send' => FakeHttpServer::answer(500, $error)]]);
        $client = $this->client([], $fake->url());
        $e = $this->expectThrown(ServerException::class, fn () => $client->dispatch('q', 'x'));

        $this->assertServerError($e, 500, 'internal', 'out of memory enqueueing the task');
    }

    public function testAProxysAnswerIsAServerException(): void
    {
        $html = '<html><body>502 Bad Gateway</body></html>';
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(502, $html, ['Content-Type' => 'text/html'])],
            ['send' => FakeHttpServer::answer(503, '<html>Service Unavailable</html>')],
        ]);
        $client = $this->client([], $fake->url());

        $e = $this->expectThrown(ServerException::class, fn () => $client->queues());
        $this->assertSame(502, $e->getStatus());
        $this->assertNull($e->getErrorCode());
        $this->assertStringContainsString('502 Bad Gateway', $e->getMessage());

        // A 503 that is not deferd's "draining" is not a DrainingException.
        $e = $this->expectThrown(ServerException::class, fn () => $client->queues());
        $this->assertSame(503, $e->getStatus());
    }

    public function testAnAnswerThatIsNotJsonIsAServerException(): void
    {
        $fake = $this->fake([['send' => FakeHttpServer::answer(200, 'OK, sure')]]);
        $client = $this->client([], $fake->url());
        $e = $this->expectThrown(ServerException::class, fn () => $client->task(1));

        $this->assertStringContainsString('not JSON', $e->getMessage());
        $this->assertStringContainsString('OK, sure', $e->getMessage());
    }

    public function testAnAnswerOfTheWrongShapeIsAServerException(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, '{"id":"seven","state":"ready"}')],
            ['send' => FakeHttpServer::answer(200, '{"id":7,"state":"exploded"}')],
            ['send' => FakeHttpServer::answer(200, '{"queues":[{"name":"q"}]}')],
        ]);
        $client = $this->client([], $fake->url());

        $e = $this->expectThrown(ServerException::class, fn () => $client->task(7));
        $this->assertStringContainsString('task.id should be an integer', $e->getMessage());
        $e = $this->expectThrown(ServerException::class, fn () => $client->task(7));
        $this->assertStringContainsString('"exploded" is not a known state', $e->getMessage());
        $e = $this->expectThrown(ServerException::class, fn () => $client->queues());
        $this->assertStringContainsString('queue.ready is missing', $e->getMessage());
    }

    public function testAnAnswerThatIsNotHttpIsAServerException(): void
    {
        $fake = $this->fake([['send' => "+OK POP3 server ready\r\n", 'close' => true]]);
        $client = $this->client([], $fake->url());
        $e = $this->expectThrown(ServerException::class, fn () => $client->task(1));

        $this->assertStringContainsString('not HTTP', $e->getMessage());
        $this->assertStringContainsString('POP3', $e->getMessage());
    }

    public function testBadOptionsOfTheClientItself(): void
    {
        foreach ([
            ['url' => 'https://127.0.0.1:11380'],
            ['url' => '127.0.0.1:11380'],
            ['url' => 'http://127.0.0.1:11380/?x=1'],
            ['timeout' => 0],
            ['timeout' => '5'],
            ['connect_timeout' => -1.0],
            ['max_body' => 10],
            ['token' => "two\nlines"],
            ['tiemout' => 5],
        ] as $options) {
            try {
                new Client($options);
                $this->fail('accepted ' . json_encode($options));
            } catch (\InvalidArgumentException $e) {
                $this->assertNotSame('', $e->getMessage());
            }
        }
    }
}
